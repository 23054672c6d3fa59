"""The runner engine (`distkv_ext.run`) against in-process DistKV servers.

Jobs record their runs in `LOG` (node, job, start, stop) so that tests can
check that no two runs of one any-node job overlap.
"""

import time
from contextlib import AsyncExitStack

import anyio
import pytest
from moat.util import P

from distkv_ext.code import CodeRoot
from distkv_ext.run import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from tests.helpers import assert_no_overlap, wait_for

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}
LOG = []  # (job, node, start, stop)
EVENTS = []

# an async job that runs until cancelled, logging its interval
FOREVER = """
import anyio, time
import tests.test_run_lib as t
rec = [name, _entry.root.node, time.time(), None]
t.LOG.append(rec)
try:
    await anyio.sleep(10000)
finally:
    rec[3] = time.time()
"""


@pytest.fixture(autouse=True)
def clear_log():
    LOG.clear()
    EVENTS.clear()


def runs_in(log):
    """`LOG` as the run records `assert_no_overlap` takes."""
    return [dict(job=job, node=node, start=start, end=stop) for job, node, start, stop in log]


async def add_job(r, path, code, **kw):
    job = r.follow(P(path), create=True)
    job.code = P(code)
    for k, v in kw.items():
        setattr(job, k, v)
    await job.run_at(time.time())
    return job


async def test_any_runner_runs_a_job(autojump_clock, client, cr):
    await cr.add("forty.two", code="return 42")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "foo.test", "forty.two")
    await wait_for(lambda: job.state.result == 42)
    assert (job.state.node, job.state.last_node, job.state.backoff, job.state.runs) == (None, "n1", 0, 1)


async def test_subpath_empty_works(autojump_clock, client, cr):
    await cr.add("forty.two", code="return 42")
    r = await AnyRunnerRoot.as_handler(client, subpath=(), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "foo.test", "forty.two")
    await wait_for(lambda: job.state.result == 42)


@pytest.mark.slow  # 5-8 s of CPU under the autojump clock
async def test_repeat_data_and_defaults(autojump_clock, client, cr):
    await cr.add("add", code="return a + b", variables=["a", "b"], default={"b": 100})
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "adder", "add", data={"a": 1}, repeat=1)
    await wait_for(lambda: (job.state.runs or 0) >= 3)
    assert job.state.result == 101


@pytest.mark.slow  # 5-8 s of CPU under the autojump clock
async def test_error_backoff_record_and_recovery(autojump_clock, client, cr):
    await cr.add("flaky", code="raise ValueError('broken pump')")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "fl", "flaky", delay=1, backoff=2)
    await wait_for(lambda: (job.state.backoff or 0) >= 2)
    assert job.state.error == "ValueError: broken pump"
    errs = [e.value async for e in client.get_tree(P(":.distkv.error")) if e.get("value", {}).get("subsystem") == "run"]
    assert errs and not errs[0].get("resolved")
    await cr.add("flaky", code="return 'ok now'")
    await wait_for(lambda: job.state.result == "ok now", timeout=60)
    assert (job.state.backoff, job.state.error) == (0, None)
    errs = [e.value async for e in client.get_tree(P(":.distkv.error")) if e.get("value", {}).get("subsystem") == "run"]
    assert errs[0].get("resolved")


async def test_give_up_after_max_tries(autojump_clock, client, cr):
    await cr.add("bad", code="raise RuntimeError('no')")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "b", "bad", delay=0.1, backoff=1, max_tries=3)
    await wait_for(lambda: job.state.reason == "gave up after 3 errors")
    await anyio.sleep(5)
    assert job.state.runs == 3


async def test_missing_code_is_an_error_and_others_run(autojump_clock, client, cr):
    await cr.add("forty.two", code="return 42")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    bad = await add_job(r, "bad", "not.there", delay=1)
    good = await add_job(r, "good", "forty.two")
    await wait_for(lambda: good.state.result == 42 and (bad.state.backoff or 0) >= 1)
    assert bad.state.error == "no procedure stored at not.there"


async def test_code_change_restarts_running_job(autojump_clock, client, cr):
    await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "svc", "svc", data={"name": "v1"})
    await wait_for(lambda: len(LOG) == 1)
    await cr.add(
        "svc", code=FOREVER.replace("name, _entry", "name + '-new', _entry"), variables=["name"], is_async=True
    )
    await wait_for(lambda: len(LOG) == 2)
    assert LOG[1][0] == "v1-new" and LOG[0][3] is not None
    assert_no_overlap(runs_in(LOG))
    # an edited entry (new data) restarts too, never a silent stop
    job.data = {"name": "v2"}
    await job.save()
    await wait_for(lambda: len(LOG) == 3)
    assert LOG[2][0] == "v2-new" and job.state.node == "n1"


async def test_module_change_restarts_job(autojump_clock, client, cr):
    await (await cr.load_modules()).add("tmod.ver", code="V = 1")
    await cr.add(
        "modjob",
        code="import tmod.ver\n" + FOREVER.replace("rec = [name,", "rec = [tmod.ver.V,"),
        variables=["name"],
        is_async=True,
        requires=["tmod.ver"],
    )
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    await add_job(r, "mj", "modjob", data={"name": "x"})
    await wait_for(lambda: len(LOG) == 1)
    await (await cr.load_modules()).add("tmod.ver", code="V = 2")
    await wait_for(lambda: len(LOG) == 2)
    assert [x[0] for x in LOG] == [1, 2]


async def test_deleted_entry_stops_job_and_runner_survives(autojump_clock, client, cr):
    await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
    await cr.add("forty.two", code="return 42")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "svc", "svc", data={"name": "a"})
    await wait_for(lambda: len(LOG) == 1)
    await job.delete()
    await wait_for(lambda: LOG[0][3] is not None)
    await wait_for(
        lambda: (
            r.state.follow(P("svc"), create=False) is None
            or r.state.follow(P("svc"), create=False).value is None
            or not r.state.follow(P("svc"), create=False).node
        )
    )
    other = await add_job(r, "other", "forty.two")
    await wait_for(lambda: other.state.result == 42)


async def test_info_queue_gets_group_state(autojump_clock, client, cr):
    await cr.add(
        "listen",
        code="import tests.test_run_lib as t\nwhile True:\n    t.EVENTS.append(await _info.get())",
        is_async=True,
    )
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    await add_job(r, "l", "listen")
    await wait_for(lambda: any(type(e).__name__ == "DetachedState" for e in EVENTS))


async def _runners(st, stack, cr_list, kind=AnyRunnerRoot, subpath=("any", "g"), names=("n1", "n2", "n3")):
    rs = []
    for i, name in enumerate(names):
        c = await stack.enter_async_context(st.client(i % len(st.s)))
        cr = await CodeRoot.as_handler(c)
        cr_list.append(cr)
        rs.append(await kind.as_handler(c, subpath=subpath, code=cr, node=name, cfg=FAST))
    return rs


@pytest.mark.slow  # 5-8 s of CPU under the autojump clock
async def test_load_balancing_and_rebalance_on_join(autojump_clock, cluster2):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        crs = []
        r1, _r2 = await _runners(cluster2, stack, crs, names=("n1", "n2"))
        await anyio.sleep(2)
        for i in range(30):
            await add_job(r1, f"j{i}", "svc", data={"name": f"j{i}"})
        await wait_for(lambda: len(LOG) == 30 and all(x[3] is None for x in LOG))
        nodes = {x[1] for x in LOG}
        assert nodes == {"n1", "n2"}
        (_r3,) = await _runners(cluster2, stack, crs, names=("n3",))
        await wait_for(lambda: any(x[1] == "n3" and x[3] is None for x in LOG))
        await anyio.sleep(5)
        running = [x for x in LOG if x[3] is None]
        per_node = {n: sum(1 for x in running if x[1] == n) for n in ("n1", "n2", "n3")}
        assert len(running) == 30 and all(v >= 4 for v in per_node.values()), per_node
        moved = len(LOG) - 30
        assert moved == per_node["n3"], "only jobs that moved to n3 were restarted"
        assert_no_overlap(runs_in(LOG))


async def test_failover_when_a_runner_disappears(autojump_clock, cluster2):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        crs = []
        (r1,) = await _runners(cluster2, stack, crs, names=("n1",))
        async with AsyncExitStack() as victim:
            (r2,) = await _runners(cluster2, victim, crs, names=("n2",))
            await anyio.sleep(2)
            for i in range(10):
                await add_job(r1, f"f{i}", "svc", data={"name": f"f{i}"})
            await wait_for(lambda: len([x for x in LOG if x[3] is None]) == 10)
            lost = {x[0] for x in LOG if x[1] == "n2" and x[3] is None}
            assert lost
            r2.group._stopping = True  # die without a word: stop heartbeats abruptly
            r2.group.leave = None
        t0 = time.time()
        await wait_for(lambda: all(any(x[0] == j and x[1] == "n1" and x[3] is None for x in LOG) for j in lost))
        assert time.time() - t0 < 5
        assert_no_overlap(runs_in(LOG))


async def test_all_node_runs_everywhere(autojump_clock, cluster2):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        crs = []
        rs = await _runners(cluster2, stack, crs, kind=AllRunnerRoot, subpath=("all", "g"), names=("n1", "n2"))
        await add_job(rs[0], "everywhere", "svc", data={"name": "e"})
        await wait_for(lambda: sorted(x[1] for x in LOG) == ["n1", "n2"])
        s1 = await c0.get(P(":.distkv.state.all.g.n1.everywhere"))
        assert s1.value["node"] == "n1"


async def test_single_node_runs_only_there(autojump_clock, cluster2):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        c1 = await stack.enter_async_context(cluster2.client(1))
        r1 = await SingleRunnerRoot.as_handler(c0, subpath=("at", "n1", "g"), code=cr, cfg=FAST)
        cr2 = await CodeRoot.as_handler(c1)
        r2 = await SingleRunnerRoot.as_handler(c1, subpath=("at", "n2", "g"), code=cr2, cfg=FAST)
        assert (r1.node, r2.node) == ("n1", "n2")
        await add_job(r1, "hw", "svc", data={"name": "hw"})
        await wait_for(lambda: len(LOG) == 1)
        await anyio.sleep(3)
        assert [x[1] for x in LOG] == ["n1"]


async def test_pinned_job_refuses_changed_code(autojump_clock, client, cr):
    from distkv_ext.codekit.core.digest import pin_hash

    await cr.add("pinned", code="return 1")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    pin = pin_hash(cr.lookup("pinned").value, (await cr.load_modules()).value_of)
    job = await add_job(r, "pj", "pinned", pin=pin, repeat=1, delay=1)
    await wait_for(lambda: job.state.result == 1)
    await cr.add("pinned", code="return 2")
    await wait_for(lambda: job.state.error is not None)
    assert job.state.error.startswith("the procedure or a module it needs changed since the job was pinned")
    assert job.state.result == 1


async def _output_of(c, job, run=None):
    res = {}
    async for r in c.get_tree(P(":.distkv.output.any.g") + P(job)):
        if "value" in r:
            res[int(r.path[-1])] = r.value
    return res if run is None else res.get(run)


@pytest.mark.parametrize("mode", ["sync", "thread", "async"])
async def test_output_is_captured(autojump_clock, mode, client, cr):
    code = "import logging, sys\nprint('hello', x)\nprint('oops', file=sys.stderr)\n_log.warning('careful')\n_log.info('fyi')\n_log.debug('noise')\nreturn x"
    await cr.add("talk", code=code, variables=["x"], is_async={"sync": None, "thread": False, "async": True}[mode])
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "talker", "talk", data={"x": 7})
    await wait_for(lambda: job.state.result == 7)
    out = None

    async def got():
        nonlocal out
        out = await _output_of(client, "talker", 1)
        return out and out.get("stopped")

    await wait_for(got, timeout=10, step=0.1, what="the output of run 1")
    assert [(s, t) for _, s, t in out["lines"]] == [
        ("stdout", "hello 7"),
        ("stderr", "oops"),
        ("log", "WARNING distkv_code.job.talker: careful"),
        ("log", "INFO distkv_code.job.talker: fyi"),
    ]
    assert out["node"] == "n1" and out["ok"] is True and out["dropped"] == 0


@pytest.mark.slow  # 5-8 s of CPU under the autojump clock
async def test_output_is_bounded(autojump_clock, client, cr):
    await cr.add("chatty", code="for i in range(50):\n    print(i)")
    r = await AnyRunnerRoot.as_handler(
        client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, output_lines=10, output_runs=2)
    )
    job = await add_job(r, "ch", "chatty", repeat=1)
    await wait_for(lambda: (job.state.runs or 0) >= 4)
    await anyio.sleep(3)
    outs = await _output_of(client, "ch")
    assert len(outs) <= 3  # the last 2, and the one being written
    last = outs[max(outs)]
    assert [t for _, _, t in last["lines"]] == [str(i) for i in range(40, 50)] and last["dropped"] == 40


async def test_a_run_stopped_before_its_code_still_prunes(autojump_clock, client, cr):
    """With ``output_runs: 1`` run 1's output goes once run 2 has its
    number, even when run 2 is stopped while it waits for a limit and so
    never writes output of its own (else run 1's stays forever: the soak
    drill's leak)."""
    await cr.add("quick", code="print('hi')\nreturn 1")
    await cr.add("hold", code="import anyio\nawait anyio.sleep(10000)", is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, output_runs=1))
    b = await add_job(r, "b", "quick", limits={"bus": 1})
    await wait_for(lambda: b.state.result == 1)

    async def stored(run):
        out = await _output_of(client, "b", run)
        return out is not None and out.get("stopped")

    await wait_for(lambda: stored(1), what="run 1's output")
    a = await add_job(r, "a", "hold", limits={"bus": 1})
    await wait_for(lambda: a.state.node == "n1" and a.state.waiting is None, what="a holds the limit")
    await b.run_at(time.time())
    await wait_for(lambda: b.state.runs == 2 and b.state.waiting, what="run 2 waits for the limit")
    await r.stop()
    assert await _output_of(client, "b") == {}


async def _run_errors(client):
    """{job name: message} of the runners' records in DistKV's error tree."""
    records, details = {}, []
    async for e in client.get_tree(P(":.distkv.error")):
        value = e.get("value")
        if isinstance(value, dict) and value.get("subsystem") == "run":
            records[tuple(e.path)] = value  # the record: subsystem, path
        elif isinstance(value, dict) and "message" in value:
            details.append((tuple(e.path[:-1]), value["message"]))  # one node's detail of the record above
    return {tuple(records[p]["path"])[-1]: msg for p, msg in details if p in records}


async def _wait_for_errors(client, expected, timeout=10):
    """Wait until each job in ``expected`` ({job: text}) has an error whose
    message holds its text; fail naming every job that has none."""
    seen = {}

    async def each():
        seen.update(await _run_errors(client))
        return all(job in seen and text in seen[job] for job, text in expected.items())

    try:
        await wait_for(each, timeout=timeout, step=0.1)
    except AssertionError:
        missing = {job: text for job, text in expected.items() if job not in seen or text not in seen[job]}
        raise AssertionError(f"no error for {missing}; errors seen: {seen}") from None


async def test_entry_with_wrong_types_is_reported_and_others_run(autojump_clock, client, cr):
    await cr.add("forty.two", code="return 42")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    await client.set(P(":.distkv.run.any.g.broken"), value={"code": P("forty.two"), "target": "soon", "delay": "abc"})
    await client.set(P(":.distkv.run.any.g.notadict"), value="code target")
    await client.set(P(":.distkv.run.any.g.badcode"), value={"code": 42, "target": 1})
    good = await add_job(r, "good", "forty.two")
    await wait_for(lambda: good.state.result == 42)
    await _wait_for_errors(
        client,
        {
            "broken": "unusable runner entry: target must be a number, not 'soon'",
            "badcode": "bad code path 42",
            "notadict": "unusable runner entry: stored value is str, not a mapping",
        },
    )
