"""A shared job whose assigned node does not start it (`_ownerwatch`).

Runners that computed the assignment from different views of the running
jobs can each assign a job to the other: nobody starts it, and nothing
makes either look at it again until the next full pass (a minute at
10,000 jobs).  The watch makes a runner that is not the owner compute
the assignment again once the job is `GRACE` timeouts overdue, and the
next runner in line claim it itself once it is `TAKE` timeouts overdue.
"""

from contextlib import AsyncExitStack

import anyio

from distkv_ext.code import CodeRoot
from distkv_ext.run import RunnerEntry, StateEntry, _scheduler
from distkv_ext.run._assign import score
from distkv_ext.run._ownerwatch import GRACE, TAKE, Look, OwnerWatch
from tests.helpers import wait_for
from tests.test_run_lib import _runners, add_job
from tests.test_run_units import shim

TIMEOUT = 2.0


def entry(**kw):
    return shim(RunnerEntry, code="p", target=900, repeat=60, **kw)


def test_a_job_that_runs_or_has_no_owner_is_not_watched():
    w = OwnerWatch("n1", TIMEOUT)
    assert w.check(entry(), shim(StateEntry, node="n2", started=950), 1000.0, "n2") == Look(None)
    assert w.check(entry(), shim(StateEntry, stopped=960), 1000.0, None) == Look(None)
    done = shim(RunnerEntry, code="p", target=900)  # no repeat: done after its run
    assert w.check(done, shim(StateEntry, started=950, stopped=960, for_target=900), 1000.0, "n2") == Look(None)


def test_a_job_is_looked_at_again_grace_timeouts_after_it_came_due():
    w = OwnerWatch("n1", TIMEOUT)
    st = shim(StateEntry, started=950, stopped=960, last_node="n1", for_target=900)
    assert w.check(entry(), st, 1000.0, "n2") == Look(1020.0 + GRACE * TIMEOUT)  # due at 1020
    assert w.check(entry(), st, 1021.0, "n2") == Look(1020.0 + GRACE * TIMEOUT)  # the owner has time
    assert w.late == 0


def test_an_overdue_job_asks_for_a_new_assignment_at_most_once_per_timeout():
    w = OwnerWatch("n1", TIMEOUT)
    st = shim(StateEntry, started=950, stopped=960, last_node="n1", for_target=900)
    late = 1020.0 + GRACE * TIMEOUT
    assert w.check(entry(), st, late, "n2") == Look(late + GRACE * TIMEOUT, True)
    assert w.check(entry(), st, late + 0.1, "n2") == Look(late + 0.1 + GRACE * TIMEOUT)  # (another job)
    assert w.check(entry(), st, late + TIMEOUT, "n2") == Look(late + TIMEOUT + GRACE * TIMEOUT, True)
    assert w.late == 2


class Group:
    """What the watch asks of a group: its live members and their tags."""

    def __init__(self, live, tags=None):
        self._live, self._tags = live, tags or {}

    def live(self):
        return dict(self._live)

    def live_tags(self):
        return dict(self._tags)


def _line(job, nodes):
    """``nodes`` by their score for ``job``, best first."""
    return sorted(nodes, key=lambda n: score(job, n), reverse=True)


def test_the_next_in_line_takes_a_job_its_owner_does_not_start():
    e = entry()
    e.job_name = "x"
    st = shim(StateEntry, started=950, stopped=960, last_node="n1", for_target=900)  # due at 1020
    owner, nxt, last = _line("x", ["n1", "n2", "n3"])
    group = Group({"n1": 1.0, "n2": 1.0, "n3": 1.0})
    take = 1020.0 + TAKE * TIMEOUT
    w = OwnerWatch(nxt, TIMEOUT)
    assert w.check(e, st, take - 0.1, owner, group).take is None  # not yet: a new assignment first
    look = w.check(e, st, take, owner, group)
    assert look.take == f"due {TAKE * TIMEOUT:.1f} s ago; {owner} had not started it" and look.again is None
    assert w.taken == 1
    # the third in line does not: every runner names the same one
    assert OwnerWatch(last, TIMEOUT).check(e, st, take, owner, group) == Look(take + GRACE * TIMEOUT, True)
    # without the next in line (dead), the one after it takes it
    assert OwnerWatch(last, TIMEOUT).check(e, st, take, owner, Group({owner: 1.0, last: 1.0})).take is not None
    # a runner that takes no shared jobs (weight 0), or lacks a required tag, does not
    assert OwnerWatch(nxt, TIMEOUT).check(e, st, take, owner, Group({owner: 1.0, nxt: 0.0})).take is None
    tagged = shim(RunnerEntry, code="p", target=900, repeat=60, require_tags=["gpio"])
    tagged.job_name = "x"
    assert OwnerWatch(nxt, TIMEOUT).check(tagged, st, take, owner, group).take is None
    with_tag = Group({"n1": 1.0, "n2": 1.0, "n3": 1.0}, {nxt: frozenset({"gpio"})})
    assert OwnerWatch(nxt, TIMEOUT).check(tagged, st, take, owner, with_tag).take is not None
    # a state naming a node: somebody runs it, nothing to take
    assert (
        OwnerWatch(nxt, TIMEOUT).check(e, shim(StateEntry, node=owner, started=1021), take, owner, group).take is None
    )


def _confuse(monkeypatch, confused):
    """While ``confused["on"]``, each runner's assignment gives job "x" to
    the other runner; the full pass comes hourly."""
    real = _scheduler.Scheduler._compute_assignment

    def compute(self, root, group):
        changed = real(self, root, group)
        if confused["on"] and "x" in self.assignment and len(group.live()) == 2:
            self.assignment["x"] = next(n for n in group.live() if n != root.node)
        return changed

    monkeypatch.setattr(_scheduler.Scheduler, "_compute_assignment", compute)
    monkeypatch.setattr(_scheduler.Agenda, "__init__", _hourly(_scheduler.Agenda.__init__))


async def _disagreeing_runners(cluster2, stack):
    c0 = await stack.enter_async_context(cluster2.client(0))
    cr = await CodeRoot.as_handler(c0)
    await cr.add("p", code="return 42")
    r1, r2 = await _runners(cluster2, stack, [], names=("n1", "n2"))
    await wait_for(lambda: all(r.group.ready and len(r.group.live()) == 2 for r in (r1, r2)), what="both ready")
    job = await add_job(r1, "x", "p")
    await anyio.sleep(1.5)
    assert job.state.result != 42, "it ran while the runners disagreed"
    assert (r1.scheduler.assignment["x"], r2.scheduler.assignment["x"]) == ("n2", "n1")
    return r1, r2, job


async def test_two_runners_that_each_assign_a_job_to_the_other_get_it_started(cluster2, monkeypatch):
    """Real time.  The views agree again, but nothing about "x" changes:
    without the watch it waited for the next full pass (made hourly
    here; at 10,000 jobs it is a minute)."""
    confused = {"on": True}
    _confuse(monkeypatch, confused)
    async with AsyncExitStack() as stack:
        r1, r2, job = await _disagreeing_runners(cluster2, stack)
        confused["on"] = False
        await wait_for(lambda: job.state.result == 42, timeout=30, what="the run once the views agree")
        assert r1.scheduler.owners.late + r2.scheduler.owners.late >= 1


async def test_runners_that_go_on_disagreeing_get_it_started_once(cluster2, monkeypatch):
    """Real time.  The views never agree (at 10,000 jobs each runner
    computes from another instant): the next in line after the owner
    each of them names takes it over, `TAKE` timeouts after it came due;
    each names the other, both claim, the claim lets one run it."""
    _confuse(monkeypatch, {"on": True})
    async with AsyncExitStack() as stack:
        r1, r2, job = await _disagreeing_runners(cluster2, stack)
        await wait_for(lambda: job.state.result == 42, timeout=60, what="the run taken over")
        assert r1.scheduler.owners.taken + r2.scheduler.owners.taken >= 1
        assert job.state.runs == 1


def _hourly(init):
    def hourly(self, full_pass=3600.0):
        init(self, full_pass)

    return hourly
