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

No I/O (a log line aside): the scheduler passes the job and asks what to do.
"""

import logging
from typing import Any

from ._schedule import next_start

logger = logging.getLogger(__name__)

__all__ = ["OwnerWatch", "GRACE"]

#: times ``timeout`` after a job came due before its not having started
#: makes a runner that is not its owner compute the assignment again
GRACE = 2.0


class OwnerWatch:
    """For the runner ``node`` of a group whose timeout is ``timeout``
    seconds (see the module doc)."""

    def __init__(self, node: str, timeout: float) -> None:
        self.node = node
        self.timeout = float(timeout)
        self._next_check = 0.0  # no new assignment for a late owner before this time
        self.late = 0  # times a late owner made us compute the assignment again

    def check(self, entry: Any, state: Any, now: float, owner: str | None) -> tuple[float | None, bool]:
        """A job assigned to ``owner`` (another node; None: to nobody):
        ``(when to look at it again, compute the assignment again?)``.
        Raises what `next_start` raises for fields of the wrong type."""
        if owner is None or state.node is not None:
            return None, False  # nobody may run it, or somebody does: a change of it wakes us
        due = next_start(entry, state, now, node=self.node)[0]
        if due is None:
            return None, False
        grace = GRACE * self.timeout
        if now < due + grace:
            return due + grace, False
        recompute = now >= self._next_check
        if recompute:
            self._next_check = now + self.timeout
            self.late += 1
            logger.info("%s: %s was due %.1f s ago and %s has not started it", self.node, entry, now - due, owner)
        return now + grace, recompute
