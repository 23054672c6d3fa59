"""A shared job whose assigned node does not start it (`_ownerwatch`).

Runners that computed the assignment from different views of the running
jobs can each assign a job to the other: nobody starts it, and nothing
makes either look at it again until the next full pass (a minute at
10,000 jobs).  The watch makes a runner that is not the owner compute
the assignment again once the job is `GRACE` timeouts overdue.
"""

from contextlib import AsyncExitStack

import anyio

from distkv_ext.code import CodeRoot
from distkv_ext.run import RunnerEntry, StateEntry, _scheduler
from distkv_ext.run._ownerwatch import GRACE, OwnerWatch
from tests.helpers import wait_for
from tests.test_run_lib import _runners, add_job
from tests.test_run_units import shim

TIMEOUT = 2.0


def entry(**kw):
    return shim(RunnerEntry, code="p", target=900, repeat=60, **kw)


def test_a_job_that_runs_or_has_no_owner_is_not_watched():
    w = OwnerWatch("n1", TIMEOUT)
    assert w.check(entry(), shim(StateEntry, node="n2", started=950), 1000.0, "n2") == (None, False)
    assert w.check(entry(), shim(StateEntry, stopped=960), 1000.0, None) == (None, False)
    done = shim(RunnerEntry, code="p", target=900)  # no repeat: done after its run
    assert w.check(done, shim(StateEntry, started=950, stopped=960, for_target=900), 1000.0, "n2") == (None, False)


def test_a_job_is_looked_at_again_grace_timeouts_after_it_came_due():
    w = OwnerWatch("n1", TIMEOUT)
    st = shim(StateEntry, started=950, stopped=960, last_node="n1", for_target=900)
    assert w.check(entry(), st, 1000.0, "n2") == (1020.0 + GRACE * TIMEOUT, False)  # due at 1020
    assert w.check(entry(), st, 1021.0, "n2") == (1020.0 + GRACE * TIMEOUT, False)  # the owner has time
    assert w.late == 0


def test_an_overdue_job_asks_for_a_new_assignment_at_most_once_per_timeout():
    w = OwnerWatch("n1", TIMEOUT)
    st = shim(StateEntry, started=950, stopped=960, last_node="n1", for_target=900)
    late = 1020.0 + GRACE * TIMEOUT
    assert w.check(entry(), st, late, "n2") == (late + GRACE * TIMEOUT, True)
    assert w.check(entry(), st, late + 0.1, "n2") == (late + 0.1 + GRACE * TIMEOUT, False)  # (another job)
    assert w.check(entry(), st, late + TIMEOUT, "n2") == (late + TIMEOUT + GRACE * TIMEOUT, True)
    assert w.late == 2


async def test_two_runners_that_each_assign_a_job_to_the_other_get_it_started(cluster2, monkeypatch):
    """Real time.  While ``confused``, each runner's assignment gives job
    "x" to the other runner; then the views agree again, but nothing about
    "x" changes: without the watch it waited for the next full pass (made
    hourly here; at 10,000 jobs it is a minute)."""
    real = _scheduler.Scheduler._compute_assignment
    confused = True

    def compute(self, root, group):
        changed = real(self, root, group)
        if confused and "x" in self.assignment and len(group.live()) == 2:
            self.assignment["x"] = next(n for n in group.live() if n != root.node)
        return changed

    monkeypatch.setattr(_scheduler.Scheduler, "_compute_assignment", compute)
    monkeypatch.setattr(_scheduler.Agenda, "__init__", _hourly(_scheduler.Agenda.__init__))
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("p", code="return 42")
        r1, r2 = await _runners(cluster2, stack, [], names=("n1", "n2"))
        await wait_for(lambda: all(r.group.ready and len(r.group.live()) == 2 for r in (r1, r2)), what="both ready")
        job = await add_job(r1, "x", "p")
        await anyio.sleep(1.5)
        assert job.state.result != 42, "it ran while the runners disagreed"
        assert (r1.scheduler.assignment["x"], r2.scheduler.assignment["x"]) == ("n2", "n1")
        confused = False
        await wait_for(lambda: job.state.result == 42, timeout=30, what="the run once the views agree")
        assert r1.scheduler.owners.late + r2.scheduler.owners.late >= 1


def _hourly(init):
    def hourly(self, full_pass=3600.0):
        init(self, full_pass)

    return hourly
