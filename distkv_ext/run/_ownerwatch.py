"""Whether the node a shared job is assigned to starts it: `OwnerWatch`.

Every runner computes who runs which any-node job (`_assign`), counting
the jobs that run now where they run.  Runners that computed it while
their views of the running jobs differed (a failover: the survivors
claim the dead node's jobs, and each computes while the others' claims
are still on their way) can disagree at the edge of a node's capacity:
A assigns a job to B, B assigns it to A, and nobody starts it.  Nothing
then changes that would make either look at it again, until the next
full pass: at 10,000 jobs up to a minute (`_agenda`), and a dead
runner's jobs ran again up to 69 s late in the scale benchmark.

So a runner that is not a job's owner looks at it again `GRACE` times
``timeout`` after it came due (by then the owner has claimed it: its
claim settles and writes within one ``timeout``, or fails).  If its
state still names nobody, the runner computes the assignment again (at
most once per ``timeout``): by then the views agree, and so do the
runners.  While all is well this costs nothing more than a due time
per job end on each runner: the owner's claim and end come first, and
the next due time replaces the look.

The views need not come to agree: at 10,000 jobs the running jobs change
a hundred times a second, and each runner computes from the instant it
looks (in the scale benchmark a dozen jobs waited 26 s for an owner that
did not start them).  So `TAKE` times ``timeout`` after a job came due,
with its state still naming nobody, the live member that may run it with
the best rendezvous score after its owner's (`_assign.score`: every
runner names the same one) claims it itself.  The claim is what keeps it
from running twice: two claimers (the owner waking up after all) settle
it by the same score, and the store's write is checked against the state
it was claimed from.

No I/O (a log line aside): the scheduler passes the job and asks what to do.
"""

import logging
from typing import Any, NamedTuple

from distkv_ext.codekit.core.errors import InputRefused

from ._assign import score
from ._placement import candidates, placement_of
from ._ratelog import RateLog
from ._schedule import plan_start

logger = logging.getLogger(__name__)

__all__ = ["OwnerWatch", "GRACE", "TAKE", "Look"]

#: times ``timeout`` after a job came due before its not having started
#: makes a runner that is not its owner compute the assignment again
GRACE = 2.0
#: times ``timeout`` after a job came due before the next runner in line
#: (after its owner) claims it itself
TAKE = 2 * GRACE


class Look(NamedTuple):
    """What `OwnerWatch.check` says to do with a job another node owns."""

    again: float | None  #: when to look at it again (None: on a change)
    recompute: bool = False  #: compute the assignment again
    take: str | None = None  #: start it here now, for this reason
    slot: float | None = None  #: ... for this calendar slot


class OwnerWatch:
    """For the runner ``node`` of a group whose timeout is ``timeout``
    seconds (see the module doc)."""

    def __init__(self, node: str, timeout: float) -> None:
        self.node = node
        self.timeout = float(timeout)
        self._next_check = 0.0  # no new assignment for a late owner before this time
        self.late = 0  # times a late owner made us compute the assignment again
        self.taken = 0  # jobs we took from an owner that did not start them
        self._taking = RateLog(logger, f"{node}: taking over a job its owner did not start:")

    def check(
        self,
        entry: Any,
        state: Any,
        now: float,
        owner: str | None,
        group: Any = None,
    ) -> Look:
        """A job assigned to ``owner`` (another node; None: to nobody):
        what to do (`Look`).  ``group``: ours (its ``live()`` and
        ``live_tags()``, asked only when the job is `TAKE` timeouts
        overdue; None: never take it over).  Raises what `plan_start`
        raises for fields of the wrong type."""
        if owner is None or state.node is not None:
            return Look(None)  # nobody may run it, or somebody does: a change of it wakes us
        plan = plan_start(entry, state, now, node=self.node)
        due = plan.at
        if due is None:
            return Look(None)
        grace = GRACE * self.timeout
        if now < due + grace:
            return Look(due + grace)
        if now >= due + TAKE * self.timeout and group is not None and self._next_in_line(entry, owner, group):
            self.taken += 1
            late = f"due {now - due:.1f} s ago"
            self._taking.add(f"{entry} ({late}, owner {owner})")
            return Look(None, take=f"{late}; {owner} had not started it", slot=plan.slot)
        recompute = now >= self._next_check
        if recompute:
            self._next_check = now + self.timeout
            self.late += 1
            logger.info("%s: %s was due %.1f s ago and %s has not started it", self.node, entry, now - due, owner)
        return Look(now + grace, recompute)

    def _next_in_line(self, entry: Any, owner: str, group: Any) -> bool:
        """Is this node the live member that may run the job with the best
        score after ``owner``?"""
        others = {n: w for n, w in group.live().items() if n != owner and w > 0}
        try:
            others = candidates(placement_of(entry.value), others, group.live_tags())
        except InputRefused:
            return False  # tags that are no list of tags: it may go nowhere
        if self.node not in others:
            return False
        job = entry.job_name
        return max(sorted(others), key=lambda n: score(job, n, others[n])) == self.node
