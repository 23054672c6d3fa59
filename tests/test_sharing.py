"""The scheduler computes the assignment again only when what it is
computed from changed (`_sharing.Sharing`): the jobs, the
live members, who holds which job, where tagged jobs may go.

At 10,000 jobs the assignment took a tenth of a busy runner's time,
because the safety-net pass over every job (`_agenda.FULL_PASS`)
computed it again every ten seconds although nothing it depends on had
changed.
"""

import math
from contextlib import AsyncExitStack
from types import SimpleNamespace

import anyio

from distkv_ext.code import CodeRoot
from distkv_ext.run import _sharing
from distkv_ext.run._index import JobIndex
from distkv_ext.run._sharing import Sharing
from tests.helpers import in_process_cluster as cluster
from tests.test_run_consistency import FOREVER, runner, running_here, wait_for
from tests.test_run_lib import add_job


async def test_an_unchanged_group_is_not_assigned_again_and_a_new_member_is(autojump_clock, monkeypatch):
    computed = []

    def counting_assign(jobs, nodes, current=None, allowed=None):
        computed.append(sorted(nodes))
        return real_assign(jobs, nodes, current, allowed)

    real_assign = _sharing.assign
    monkeypatch.setattr(_sharing, "assign", counting_assign)
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


def test_a_start_or_end_where_assigned_keeps_the_assignment_and_others_make_it_stale():
    index = JobIndex()
    index.add_entry(("a",), "a")
    sharing = Sharing(SimpleNamespace(), index)  # (the host is not asked for any of this)
    sharing.assignment = {"a": "n1"}
    sharing.stale = False
    sharing.moved(("a",), "n1", None)  # starts where assigned
    sharing.moved(("a",), None, "n1")  # ends there
    assert not sharing.stale and sharing.wake() == math.inf
    sharing.moved(("a",), "n2", None)  # starts elsewhere
    assert sharing.stale
    sharing.stale = False
    sharing.moved(("b",), "n1", None)  # a job it does not know
    assert sharing.stale


def test_tags_make_it_stale_when_they_come_or_go():
    sharing = Sharing(SimpleNamespace(), JobIndex())
    sharing.stale = False
    sharing.tags_of(("a",), {"code": "p"})
    assert not sharing.stale
    sharing.tags_of(("a",), {"code": "p", "require_tags": ["relay"]})
    assert sharing.stale
    sharing.stale = False
    sharing.tags_of(("a",), {"code": "p"})  # no longer: stale again
    assert sharing.stale
    sharing.at_once()
    assert sharing.due(0.0)
