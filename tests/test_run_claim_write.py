"""A run writes its claim (its job's state naming this node) once it has
lasted ``runner.claim_write_delay``; a shorter run writes its state once,
with its end (`distkv_ext.run._statewrites`).  Against a real DistKV."""

import anyio
import pytest
from moat.util import NotGiven, P

from distkv_ext.codekit.core.errors import BadArguments
from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._config import RunnerConfig
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

STATE = P(":.distkv.state.any.g")

# an async job that runs until cancelled and says so
LONG = """
import anyio
import tests.test_run_claim_write as t
t.STARTED.append(_entry.state.runs)
await anyio.sleep(10000)
"""
STARTED: list = []


@pytest.fixture(autouse=True)
def _clear():
    STARTED.clear()


async def _stored(client, job):
    """The stored state of ``job`` (NotGiven: none)."""
    r = await client.get(STATE + P(job))
    return r.get("value", NotGiven)


async def _count_writes(client, job, writes, task_status=anyio.TASK_STATUS_IGNORED):
    """Append every value written to ``job``'s state to ``writes``."""
    async with client.watch(STATE + P(job), fetch=False) as w:
        task_status.started()
        async for r in w:
            if "value" in r:
                writes.append(r.value)


@pytest.mark.parametrize("delay,per_run", [(1.0, 1), (0, 2)])
async def test_a_short_run_writes_its_state_once(autojump_clock, client, cr, delay, per_run):
    await cr.add("quick", code="return 7")
    writes: list = []
    async with anyio.create_task_group() as tg:
        await tg.start(_count_writes, client, "q", writes)
        r = await AnyRunnerRoot.as_handler(
            client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, claim_write_delay=delay)
        )
        job = await add_job(r, "q", "quick", repeat=2)
        await wait_for(lambda: (job.state.runs or 0) >= 3 and job.state.node is None, what="three runs")
        await wait_for(lambda: len([w for w in writes if w.get("runs") == 3 and w.get("node") is None]) == 1)
        await r.stop()
        tg.cancel_scope.cancel()
    per = [w for w in writes if w.get("runs") in (1, 2, 3)]
    assert len(per) == 3 * per_run, per
    ends = [w for w in per if w.get("node") is None]
    assert [(w["runs"], w["last_node"], w["result"], w.get("error")) for w in ends] == [
        (n, "n1", 7, None) for n in (1, 2, 3)
    ]
    assert all(w.get("started") and w.get("stopped") >= w["started"] for w in ends)


async def test_a_long_run_is_named_in_the_store_once_it_has_lasted_the_delay(autojump_clock, client, cr):
    await cr.add("long", code=LONG, is_async=True)
    r = await AnyRunnerRoot.as_handler(
        client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, claim_write_delay=3)
    )
    job = await add_job(r, "l", "long")
    await wait_for(lambda: STARTED == [1], what="the code started")
    assert job.state.node == "n1"  # here, at once
    assert (await _stored(client, "l")) is NotGiven  # the store: not yet
    await anyio.sleep(1)
    assert (await _stored(client, "l")) is NotGiven
    await anyio.sleep(3)
    stored = await _stored(client, "l")
    assert (stored["node"], stored["runs"]) == ("n1", 1)
    await r.stop()
    stored = await _stored(client, "l")
    assert (stored["node"], stored["resume"], stored["reason"]) == (None, True, "runner stopped")


async def test_a_stop_before_the_delay_writes_only_the_end(autojump_clock, client, cr):
    await cr.add("long", code=LONG, is_async=True)
    r = await AnyRunnerRoot.as_handler(
        client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, claim_write_delay=30)
    )
    writes: list = []
    async with anyio.create_task_group() as tg:
        await tg.start(_count_writes, client, "s", writes)
        job = await add_job(r, "s", "long")
        await wait_for(lambda: STARTED == [1], what="the code started")
        await r.stop()
        await anyio.sleep(0.5)
        tg.cancel_scope.cancel()
    assert [(w["node"], w["runs"], w["reason"]) for w in writes] == [(None, 1, "runner stopped")]
    assert job.state.node is None


async def test_a_run_fenced_before_its_claim_was_written_leaves_no_trace_of_it(autojump_clock, client, cr):
    # fenced while its claim waits: the run stops, writes nothing, and this
    # runner's copy of the state is the store's again, not the unwritten claim
    await cr.add("long", code=LONG, is_async=True)
    await client.set(STATE + P("f"), value={"node": None, "last_node": "n0", "runs": 4, "stopped": 1.0})
    r = await AnyRunnerRoot.as_handler(
        client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, claim_write_delay=30)
    )
    job = await add_job(r, "f", "long")
    await wait_for(lambda: STARTED == [5], what="the code started")
    run = r.scheduler.index.run_named("f")
    assert run is not None and run.claim_unwritten and job.state.node == "n1"
    run.fence("held by n9 (test)")
    await wait_for(run.done.is_set, what="the fenced run's end")
    stored = await _stored(client, "f")
    assert (stored["node"], stored["last_node"], stored["runs"]) == (None, "n0", 4)
    assert (job.state.node, job.state.last_node, job.state.runs) == (None, "n0", 4)
    await r.stop()


async def test_what_arrives_meanwhile_is_applied_after_the_hold(autojump_clock, client, cr):
    await cr.add("long", code=LONG, is_async=True)
    r = await AnyRunnerRoot.as_handler(
        client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, claim_write_delay=2)
    )
    job = await add_job(r, "h", "long")
    await wait_for(lambda: STARTED == [1], what="the code started")
    first = r.scheduler.index.run_named("h")
    # another node writes the job's state meanwhile (naming itself)
    await client.set(STATE + P("h"), value={"node": "n9", "runs": 5, "started": 1.0})
    await anyio.sleep(0.5)
    assert job.state.node == "n1"  # held back while our claim waits
    # our claim's write was conditional on the state we knew: it fails, the
    # run stops, and n9's state is taken in (n9 is no live member: taken over)
    await wait_for(first.done.is_set, what="the first run's end")
    assert first.claim.stop.reason.startswith("its claim could not be written")
    await wait_for(lambda: STARTED == [1, 6], what="the take-over from n9")
    await r.stop()


@pytest.mark.parametrize("bad", [-1, "soon", float("nan"), 4000])
def test_claim_write_delay_is_checked(bad):
    with pytest.raises(BadArguments, match=r"^runner.claim_write_delay "):
        RunnerConfig(claim_write_delay=bad)
