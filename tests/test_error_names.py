"""Error records of earlier versions, named ``HOST.PID`` (a set per daemon
start): a daemon of this version, named ``HOST.NODE.GROUP``, finds them
(records are looked up by subsystem and path), adds no second record,
and resolves them when the job works again; the ``HOST.PID`` detail
entries of processes that are gone are deleted (in-process DistKV)."""

from moat.util import P

from distkv_ext.code import CodeRoot
from distkv_ext.codekit.store.errtree import forget_dead_pids, name_error_records
from distkv_ext.run import SingleRunnerRoot
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job


async def _records(client):
    """{record path: value} of the runner's error records, and the names of
    the detail entries below them."""
    recs, details = {}, set()
    async for e in client.get_tree(P(":.distkv.error")):
        v = e.get("value")
        if len(e.path) == 2 and isinstance(v, dict) and v.get("subsystem") == "run":
            recs[tuple(str(x) for x in e.path)] = v
        elif len(e.path) == 3:
            details.add(str(e.path[2]))
    return recs, details


async def test_old_host_pid_records_are_reused_resolved_and_their_details_go(autojump_clock, cluster):
    async with cluster.client() as c:
        old = f"{c.client_name}.4242"  # what earlier versions named a daemon's records
        name_error_records(c, old)
        cr = await CodeRoot.as_handler(c)
        await cr.add("flaky", code="raise RuntimeError('broken')")
        r = await SingleRunnerRoot.as_handler(c, subpath=("at", "n1", "g"), code=cr, node="n1", cfg=FAST)
        job = await add_job(r, "fl", "flaky", delay=1, backoff=1, max_delay=1)
        await wait_for(lambda: (job.state.backoff or 0) >= 1)
        await wait_for(lambda: _records(c), what="the error record")
        await r.stop()
        (path,), _ = await _records(c)
        assert path[0] == old
    async with cluster.client() as c:
        name_error_records(c, f"{c.client_name}.n1.g")  # as run_daemon does now
        cr = await CodeRoot.as_handler(c)
        r = await SingleRunnerRoot.as_handler(c, subpath=("at", "n1", "g"), code=cr, node="n1", cfg=FAST)
        job = r.follow(P("fl"), create=False)
        runs = job.state.runs
        await wait_for(lambda: job.state.runs >= runs + 2, what="two more failed runs")
        recs, details = await _records(c)
        assert list(recs) == [path] and not recs[path].get("resolved"), recs  # the old record, reused
        await cr.add("flaky", code="return 1")
        await wait_for(lambda: job.state.result == 1)

        async def resolved():
            recs, _ = await _records(c)
            return list(recs) == [path] and recs[path].get("resolved")

        await wait_for(resolved, what="the old record resolved")
        assert details == {old, f"{c.client_name}.n1.g"}
        # what run_daemon does at start: the dead process's details go, not ours
        # nor a live process's
        await c.set(P(":.distkv.error") + path + (f"{c.client_name}.1",), value={"comment": "init is alive"})
        assert await forget_dead_pids(c) == 1
        _, details = await _records(c)
        assert details == {f"{c.client_name}.n1.g", f"{c.client_name}.1"}
        assert list((await _records(c))[0]) == [path]
