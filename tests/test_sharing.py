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
        await anyio.sleep(11)  # the last starts are heard, and a full pass computes it once more
        before = len(computed)
        await anyio.sleep(25)  # two full passes of each runner: nothing changed
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


class _Group:
    def __init__(self, live):
        self.members = dict(live)

    def live(self):
        return dict(self.members)

    def live_tags(self):
        return {n: frozenset() for n in self.members}

    def is_live(self, node):
        return node in self.members


def _host(jobs, live):
    """What `Sharing` asks of its runner root: its node, policy, group and
    the job states (``jobs``: {name: (node, last_node)})."""
    states = {(name,): SimpleNamespace(node=n, last_node=ln) for name, (n, ln) in jobs.items()}
    return SimpleNamespace(
        node="n1",
        policy=SimpleNamespace(shares_jobs=True),
        group=_Group(live),
        state_for=lambda path, create=False: states.get(path),
        follow=lambda path, create=False: None,
        states=states,
    )


def test_a_job_stays_with_the_node_that_ran_it_last_and_a_changed_view_makes_it_stale():
    jobs = {f"j{i}": (None, None) for i in range(6)}
    jobs["j0"] = (None, "n3")  # ran on n3 last: stays there, whatever its preference
    jobs["j1"] = ("n2", "n2")  # runs on n2 now
    jobs["j2"] = (None, "gone")  # ran last on a node that is not live: goes by preference
    root = _host(jobs, {"n1": 1.0, "n2": 1.0, "n3": 1.0})
    index = JobIndex()
    for name in jobs:
        index.add_entry((name,), name)
    sharing = Sharing(root, index)
    sharing.reassign()
    assert sharing.assignment["j0"] == "n3" and sharing.assignment["j1"] == "n2"
    assert set(sharing.assignment) == set(jobs)
    assert sorted(sharing.assignment.values()).count("n1") == 2  # two each: the share of three nodes

    sharing.check(False, set())  # a full pass that found nothing new
    assert not sharing.stale
    # a start this runner heard of only now, on the node it assigned the
    # job to: the view changed, so the others may have decided otherwise
    # (that start moved the capacity left for jobs that never ran)
    root.states[("j3",)].last_node = sharing.assignment["j3"]
    sharing.check(False, set())
    assert sharing.stale
    sharing.reassign()
    sharing.check(False, set())
    assert not sharing.stale
    del root.group.members["n3"]  # a member gone (the group said so: `at_once`; the pass sees it too)
    sharing.check(False, set())
    assert sharing.stale
    sharing.reassign()
    assert "n3" not in sharing.assignment.values() and sharing.assignment["j1"] == "n2"
