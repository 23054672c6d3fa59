"""The scheduler's caches agree while runners work (`Scheduler.check_consistency`).

Scenarios in the style of test_run_lib, with a watcher that checks every
runner's scheduler every 50 ms (and at the end): entries added, edited,
deleted; runners joining and leaving; jobs moving.
"""

from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pytest

from distkv_ext.code import CodeRoot
from distkv_ext.run import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from distkv_ext.run._agenda import Agenda
from distkv_ext.run._claim import Phase
from distkv_ext.run._index import JobIndex
from tests.helpers import in_process_cluster as cluster
from tests.test_run_lib import add_job

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}
FOREVER = "import anyio\nawait anyio.sleep(10000)"


async def wait_for(pred, timeout=30):
    with anyio.fail_after(timeout):
        while not pred():
            await anyio.sleep(0.02)


@asynccontextmanager
async def checking(runners):
    """Check every runner's scheduler every 50 ms while the block runs."""
    checks = [0]

    async def watch():
        while True:
            for r in list(runners):
                r.scheduler.check_consistency()
            checks[0] += 1
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        yield checks
        tg.cancel_scope.cancel()
    for r in runners:
        r.scheduler.check_consistency()


def running_here(r):
    return {p for p, run in r.scheduler.jobs.items() if run.claim.phase is Phase.HELD}


async def runner(st, stack, i, name, kind=AnyRunnerRoot, subpath=("any", "g")):
    c = await stack.enter_async_context(st.client(i % len(st.s)))
    cr = await CodeRoot.as_handler(c)
    return await kind.as_handler(c, subpath=subpath, code=cr, node=name, cfg=FAST)


@pytest.mark.slow  # 12 s
async def test_caches_agree_through_joins_edits_deletes_and_leaves(autojump_clock):
    async with cluster(n=2) as st, AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(st.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, is_async=True)
        await cr.add("once", code="return 1")
        rs = [await runner(st, stack, 0, "n1"), await runner(st, stack, 1, "n2")]
        async with checking(rs) as checks:
            await anyio.sleep(2)
            jobs = [await add_job(rs[0], f"j{i}", "svc") for i in range(12)]
            ones = [await add_job(rs[0], f"o{i}", "once") for i in range(3)]
            await wait_for(lambda: sum(len(running_here(r)) for r in rs) == 12)
            async with AsyncExitStack() as third:
                rs.append(await runner(st, third, 1, "n3"))
                await wait_for(lambda: running_here(rs[2]))  # the excess moved to it
                await anyio.sleep(3)
                for j in jobs[:4]:  # edited: restarts
                    j.data = {"v": 2}
                    await j.save()
                for j in jobs[4:6]:  # deleted: stops, its state goes
                    await j.delete()
                await wait_for(lambda: sum(len(running_here(r)) for r in rs) == 10)
                rs[2].group._stopping = True  # dies without a word
                rs[2].group.leave = None
                rs.pop()
            await wait_for(lambda: sum(len(running_here(r)) for r in rs) == 10, timeout=60)
            await wait_for(lambda: all(o.state.result == 1 for o in ones))
        assert checks[0] > 100
        for r in rs:
            sched = r.scheduler
            assert set(sched.index.names) == {f"j{i}" for i in range(12) if i not in (4, 5)} | {"o0", "o1", "o2"}


async def test_caches_agree_for_all_node_and_single_node_runners(autojump_clock):
    async with cluster(n=2) as st, AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(st.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, is_async=True)
        alls = [await runner(st, stack, i, f"n{i + 1}", kind=AllRunnerRoot, subpath=("all", "g")) for i in range(2)]
        single = await runner(st, stack, 0, "n1", kind=SingleRunnerRoot, subpath=("at", "n1", "g"))
        async with checking([*alls, single]):
            everywhere = [await add_job(alls[0], f"e{i}", "svc") for i in range(3)]
            here = [await add_job(single, f"h{i}", "svc") for i in range(3)]
            await wait_for(lambda: all(len(running_here(r)) == 3 for r in [*alls, single]))
            await everywhere[0].delete()
            here[0].target = 0  # a cleared target stops it
            await here[0].save()
            await wait_for(lambda: all(len(running_here(r)) == 2 for r in [*alls, single]))
        assert not single.scheduler.assignment  # nothing is shared


def test_the_checks_find_disagreement():
    idx = JobIndex()
    idx.add_entry(("a", "b"), "a.b")
    idx.add_entry(("a.b",), "a.b")  # one name, two paths
    idx.remove_entry(("a.b",))
    idx.check()
    assert idx.names == {"a.b": ("a", "b")}
    idx._paths["x"] = ("a", "b")
    with pytest.raises(AssertionError):
        idx.check()
    agenda = Agenda()
    agenda.look_at(("a",), 5.0)
    agenda.look_at(("a",), 7.0)
    agenda.check()
    agenda._due.clear()
    with pytest.raises(AssertionError):
        agenda.check()
