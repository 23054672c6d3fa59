"""`Agenda`: which jobs the scheduler looks at next, and when it wakes.

A change names the jobs it concerns (`changed`); a job due later asks to
be looked at then (`look_at`); every ``full_pass`` seconds, or when told
(`everything`), every job is looked at (the safety net of the triggers).

A full pass costs time in proportion to the jobs (at 10,000 jobs, a tenth
of the runner's busy time when it came every 10 s): the scheduler reports
what one cost (`full_pass_took`), and the next comes no sooner than
``1 / FULL_PASS_SHARE`` times that, within ``MAX_FULL_PASS`` seconds.  A
group of a few hundred jobs passes in milliseconds and keeps the 10 s.
"""

import heapq
import itertools
import math
import time
from collections.abc import Callable

from ._entry import JobPath

__all__ = ["Agenda", "FULL_PASS", "FULL_PASS_SHARE", "MAX_FULL_PASS"]

#: seconds: every job is looked at at least this often, whatever the
#: triggers said (they name the jobs that changed; this is the safety net)
FULL_PASS = 10.0
#: a full pass may use about this share of the runner's time: the next
#: comes no sooner than its cost divided by this
FULL_PASS_SHARE = 0.02
#: seconds: however costly a full pass, the next comes within this
MAX_FULL_PASS = 60.0


class Agenda:
    """The scheduler's to-do list (see the module doc)."""

    def __init__(self, full_pass: float = FULL_PASS) -> None:
        self.full_pass = full_pass
        self._full = True  # the next pass looks at every job
        self._next_full = 0.0
        self._dirty: set[JobPath] = set()  # paths that changed
        self._due: list[tuple[float, int, JobPath]] = []  # heap: look again then
        self._due_at: dict[JobPath, float] = {}  # path -> its (latest) time in _due
        self._seq = itertools.count()

    def everything(self) -> None:
        """Look at every job on the next pass."""
        self._full = True

    def changed(self, path: JobPath) -> None:
        """Look at the job at ``path`` on the next pass."""
        self._dirty.add(path)

    def look_at(self, path: JobPath, t: float) -> None:
        """Look at the job at ``path`` again at time ``t`` (replaces an
        earlier time for it)."""
        if self._due_at.get(path) != t:
            self._due_at[path] = t
            heapq.heappush(self._due, (t, next(self._seq), path))

    def meter(self, now: float) -> Callable[[], float]:
        """The clock that a pass at ``now`` measures its cost with: this
        thread's CPU time if `take` will ask for a full pass, else one that
        says 0.0 (a pass that is not full reports no cost, and in a busy
        runner one read of the thread's CPU clock took 0.1-0.5 ms: a system
        call on a machine where every process waits for a core)."""
        return time.thread_time if self._full_due(now) else _no_cost

    def take(self, now: float) -> set[JobPath] | None:
        """What to look at now: None for every job (a full pass; the
        agenda starts afresh), else the paths that changed or are due."""
        if self._full_due(now):
            self._full = False
            self._next_full = now + self.full_pass
            self._dirty.clear()
            self._due.clear()
            self._due_at.clear()
            return None
        paths, self._dirty = self._dirty, set()
        while self._due and self._due[0][0] <= now:
            t, _, path = heapq.heappop(self._due)
            if self._due_at.get(path) == t:
                del self._due_at[path]
                paths.add(path)
        return paths

    def _full_due(self, now: float) -> bool:
        return self._full or now >= self._next_full

    def full_pass_took(self, started: float, cost: float) -> None:
        """The full pass begun at time ``started`` took ``cost`` seconds of
        the runner's time: the next waits ``cost / FULL_PASS_SHARE``
        seconds if that is longer than ``full_pass`` (at most
        ``MAX_FULL_PASS``); `everything` still asks for one at once."""
        spaced = min(MAX_FULL_PASS, max(self.full_pass, cost / FULL_PASS_SHARE))
        self._next_full = max(self._next_full, started + spaced)

    def next_wake(self) -> float:
        """When the next pass is due at the latest (a time)."""
        return min(self._next_full, self._due[0][0] if self._due else math.inf)

    def check(self) -> None:
        """Raise AssertionError if the times and the heap disagree."""
        queued = {(t, p) for t, _, p in self._due}
        for path, t in self._due_at.items():
            assert (t, path) in queued, f"{path} due at {t} but not queued"


def _no_cost() -> float:
    return 0.0
