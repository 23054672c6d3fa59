"""The scheduler computes the assignment again only when what it is
computed from changed (`Scheduler._compute_assignment`): the jobs, the
live members, who holds which job, where tagged jobs may go.

At 10,000 jobs the assignment took a tenth of a busy runner's time,
because the safety-net pass over every job (`_agenda.FULL_PASS`)
computed it again every ten seconds although nothing it depends on had
changed.
"""

from contextlib import AsyncExitStack

import anyio

from distkv_ext.code import CodeRoot
from distkv_ext.run import _scheduler
from tests.helpers import in_process_cluster as cluster
from tests.test_run_consistency import FOREVER, runner, running_here, wait_for
from tests.test_run_lib import add_job


async def test_an_unchanged_group_is_not_assigned_again_and_a_new_member_is(autojump_clock, monkeypatch):
    computed = []

    def counting_assign(jobs, nodes, current=None, allowed=None):
        computed.append(sorted(nodes))
        return real_assign(jobs, nodes, current, allowed)

    real_assign = _scheduler.assign
    monkeypatch.setattr(_scheduler, "assign", counting_assign)
    async with cluster(n=2) as st, AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(st.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, is_async=True)
        rs = [await runner(st, stack, 0, "n1"), await runner(st, stack, 1, "n2")]
        await anyio.sleep(2)
        for i in range(8):
            await add_job(rs[0], f"j{i}", "svc")
        await wait_for(lambda: sum(len(running_here(r)) for r in rs) == 8)
        await anyio.sleep(5)  # the last starts are heard everywhere
        before = len(computed)
        await anyio.sleep(35)  # three full passes of each runner: nothing changed
        assert len(computed) == before
        for r in rs:
            r.scheduler.check_consistency()

        rs.append(await runner(st, stack, 1, "n3"))  # a new member: computed again
        await wait_for(lambda: running_here(rs[2]))  # and the excess moved to it
        assert ["n1", "n2", "n3"] in computed[before:]
        assert sum(len(running_here(r)) for r in rs) == 8
