"""Nothing of a deleted job stays in the store: its state and the output of
its runs go, whether it ran at that moment or not (in-process DistKV)."""

import anyio
import pytest
from moat.util import P

from distkv_ext.code import CodeRoot
from distkv_ext.run import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot, job_states, remove_job
from tests.helpers import wait_for
from tests.test_run_lib import FAST, FOREVER, add_job


async def _outputs(client, kind, job):
    res = []
    async for e in client.get_tree(P(f":.distkv.output.{kind}.g")):
        if "value" in e and job in [str(x) for x in e.path]:
            res.append(tuple(str(x) for x in e.path))
    return res


@pytest.mark.parametrize("running", [False, True], ids=["done", "running"])
async def test_a_deleted_job_leaves_nothing(running, autojump_clock, client, cr):
    await cr.add("talks", code="print('hi')\nreturn 1")
    await cr.add("forever", code=FOREVER, variables=["name"], is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    if running:
        job = await add_job(r, "gone.job", "forever", data={"name": "gone.job"})
        await wait_for(lambda: job.state.node == "n1")
    else:
        job = await add_job(r, "gone.job", "talks", repeat=0.5)
        await wait_for(lambda: (job.state.runs or 0) >= 3)
    keep = await add_job(r, "gone.job.kept", "talks")  # below the deleted one: stays
    await wait_for(lambda: keep.state.result == 1)
    await wait_for(lambda: _outputs(client, "any", "kept"), what="the kept job's output")
    assert await _outputs(client, "any", "job") != []
    await remove_job(client, "any", "g", "gone.job")

    async def nothing_left():
        return not await job_states(client, "any", "g", "gone.job") and not [
            p for p in await _outputs(client, "any", "job") if "kept" not in p
        ]

    await wait_for(nothing_left, timeout=10, what="the deleted job's state and output to go")
    await anyio.sleep(2)
    assert await nothing_left()
    assert await job_states(client, "any", "g", "gone.job.kept") and await _outputs(client, "any", "kept")
    assert not r.lost_event.is_set()


async def test_an_all_node_job_s_states_go_on_every_node(autojump_clock, client, cr):
    await cr.add("talks", code="print('hi')\nreturn 1")
    rs = [await AllRunnerRoot.as_handler(client, subpath=("all", "g"), code=cr, node=n, cfg=FAST) for n in ("a1", "a2")]
    await add_job(rs[0], "aj", "talks")
    await wait_for(lambda: len(_sync_states(rs)) == 2, what="both nodes ran it")
    await wait_for(lambda: job_states(client, "all", "g", "aj"), what="the states")
    await remove_job(client, "all", "g", "aj")

    async def nothing_left():
        return not await job_states(client, "all", "g", "aj") and not await _outputs(client, "all", "aj")

    await wait_for(nothing_left, timeout=10, what="every node's state and output to go")


def _sync_states(rs):
    jobs = [r.follow(P("aj"), create=False) for r in rs]
    return [j for j in jobs if j is not None and (j.state.runs or 0) >= 1]  # None: not arrived yet


ROOTS = {
    "any": (AnyRunnerRoot, ("any", "g")),
    "all": (AllRunnerRoot, ("all", "g")),
    "single": (SingleRunnerRoot, ("at", "n1", "g")),
}


async def _left(client, kind, job):
    """What the store still holds of ``job``: its states, the outputs of
    its runs, its unresolved error records."""
    out = P(":.distkv.output") + ROOTS[kind][1]
    res = [("state", k) for k in await job_states(client, kind, "g", job, node="n1" if kind == "single" else None)]
    res += [
        ("output", str(e.path)) async for e in client.get_tree(out) if "value" in e and job in [str(x) for x in e.path]
    ]
    async for e in client.get_tree(P(":.distkv.error")):
        v = e.get("value")
        if (
            isinstance(v, dict)
            and v.get("subsystem") == "run"
            and not v.get("resolved")
            and job in [str(x) for x in v.get("path", ())]
        ):
            res.append(("error", str(e.path)))
    return res


@pytest.mark.parametrize("kind", ["single", "all", "any"])
async def test_a_job_deleted_while_its_runner_was_down_goes_when_it_starts(kind, autojump_clock, cluster):
    """Nobody saw it go: the next start of its runner forgets it (it used
    to stay for good: every ``run delete`` while a node was down added
    entries)."""
    cls, sub = ROOTS[kind]
    node = "n1" if kind == "single" else None
    async with cluster.client() as c:
        cr = await CodeRoot.as_handler(c)
        await cr.add("fails", code="print('hi')\nraise RuntimeError('oops')")
        await cr.add("talks", code="print('hi')\nreturn 1")
        r = await cls.as_handler(c, subpath=sub, code=cr, node="n1", cfg=FAST)
        job = await add_job(r, "gone", "fails", delay=10)
        kept = await add_job(r, "kept", "talks")
        await wait_for(lambda: (job.state.runs or 0) >= 1 and kept.state.result == 1)
        await wait_for(lambda: _left(c, kind, "gone"), what="its state, output and error")
        await r.stop()
    async with cluster.client() as c:
        await remove_job(c, kind, "g", "gone", node=node)
        await anyio.sleep(1)
        assert {w for w, _ in await _left(c, kind, "gone")} == {"state", "output", "error"}
    async with cluster.client() as c:
        await cls.as_handler(c, subpath=sub, node="n1", cfg=FAST)

        async def gone():
            return not await _left(c, kind, "gone")

        await wait_for(gone, timeout=20, what="what the deleted job left to go")
        assert await job_states(c, kind, "g", "kept", node=node)
        assert await _left(c, kind, "kept")  # its state and output stay


async def test_output_without_a_state_of_a_deleted_job_goes(autojump_clock, cluster):
    """A runner stopped between writing a run's output and its state left
    an output that no state leads to: it goes too."""
    async with cluster.client() as c:
        await c.set(P(":.distkv.output.at.n1.g.ghost.3"), value={"run": 3, "lines": []})
        await c.set(P(":.distkv.output.at.n1.g.ghost.x"), value={"not": "a run"})  # not a run's: stays
        cr = await CodeRoot.as_handler(c)
        await cr.add("talks", code="print('hi')\nreturn 1")
        r = await SingleRunnerRoot.as_handler(c, subpath=("at", "n1", "g"), code=cr, node="n1", cfg=FAST)
        kept = await add_job(r, "kept", "talks")
        await wait_for(lambda: kept.state.result == 1)

        async def ghost():
            return [str(e.path) async for e in c.get_tree(P(":.distkv.output.at.n1.g.ghost")) if "value" in e]

        async def only_x():
            return await ghost() == ["x"]

        await wait_for(only_x, what="the ghost's output to go")
        assert await _left(c, "single", "kept")
