"""`Sharing`: who runs which job shared by a group, kept up to date.

The scheduler tells it what changed (`moved`, `tags_of`, `at_once`); it
knows whether the assignment is still valid (`stale`) and computes it
again (`reassign`, `_assign.assign`) from the jobs, the live members,
where each job runs or ran last, and where tagged jobs may go.

A job stays with the live node that runs it *or ran it last*, within
that node's capacity (`_assign`): what the assignment is computed from
does not change while jobs run where they are assigned, so every runner
of a group computes the same one, and it stays put.  When only running
jobs stayed, a periodic job's owner depended on which jobs happened to
run at that instant: at 10,000 jobs the runners disagreed on dozens of
jobs at any time, each start on a node another runner did not expect
made that runner compute the assignment again (a twentieth of a busy
runner's time), and the new one disagreed elsewhere.

Computing it takes ~10 ms per 1000 jobs, so it is done at most every
`_REASSIGN_SHARE` times its own cost while states change, at once when
a member comes or goes, and not at all for a job that starts or ends on
the node it is assigned to.  The scheduler's full pass, the safety net
of its triggers, asks `check` whether the index it rebuilt still matches
what the assignment was computed from.
"""

import math
import time
from typing import Any

from ._assign import assign
from ._entry import JobPath
from ._host import RunnerHost
from ._index import JobIndex
from ._placement import allowed_nodes, has_tags

__all__ = ["Sharing"]

#: the assignment is computed again at most every this many times what
#: computing it took the last time: it uses at most about a fifth of
#: the runner's time while states change
_REASSIGN_SHARE = 4.0


class Sharing:
    """The assignment of one runner root's shared jobs (see the module doc).

    ``assignment``: job name -> the node that should run it.
    """

    def __init__(self, root: RunnerHost, index: JobIndex) -> None:
        self.root = root
        self.index = index
        self.assignment: dict[str, str | None] = {}
        self.stale = True  # compute the assignment again
        self._after = 0.0  # not before this time (see _REASSIGN_SHARE)
        self._tagged: set[JobPath] = set()  # entries that require or prefer tags (`_placement`)
        self._inputs: tuple[Any, ...] | None = None  # `_now` when it was last computed

    # --- what changed ---

    def at_once(self) -> None:
        """A member came or went: compute it again now, whatever it costs."""
        self.stale = True
        self._after = 0.0

    def moved(self, path: JobPath, node: str | None, old_node: str | None) -> None:
        """The job at ``path`` is now held by ``node`` (None: nobody), and
        was by ``old_node``.  Stale, unless it starts or ends on the node it
        is assigned to: with thousands of jobs a minute each start and end
        would otherwise cost a whole assignment."""
        mine = self.assignment.get(self.index.name_of(path) or "")
        if mine is None or (node or old_node) != mine:
            self.stale = True

    def tags_of(self, path: JobPath, value: Any) -> None:
        """The entry at ``path`` has this value now: stale if where it may
        run may have changed (it requires or prefers tags, or did)."""
        if has_tags(value):
            self._tagged.add(path)
            self.stale = True
        elif path in self._tagged:
            self._tagged.discard(path)
            self.stale = True

    # --- the scheduler's loop ---

    def wake(self) -> float:
        """When the scheduler must compute it again at the latest."""
        return self._after if self.stale else math.inf

    def due(self, now: float) -> bool:
        """Is it stale and may it be computed again now?"""
        return self.stale and now >= self._after

    def check(self, entries_changed: bool, tagged: set[JobPath]) -> None:
        """After a full pass rebuilt the index: ``entries_changed``, and the
        paths of the entries with tags found.  Stale if they differ from
        what the triggers kept, or if anything the assignment was computed
        from has changed since (where jobs are, the live members, their
        tags).  So runners that computed it from different views (one had
        heard a start the other had not yet) agree again within one full
        pass once their views agree: two such runners each took a job that
        had never run for the other's, and neither started it until an
        unrelated change made them compute it again, for a minute."""
        changed = entries_changed or tagged != self._tagged
        self._tagged = tagged
        group = self.root.group
        if changed or (self.root.policy.shares_jobs and group is not None and self._inputs != self._now(group)):
            self.stale = True

    def _now(self, group: Any) -> tuple[Any, ...]:
        """What the assignment is computed from, besides the jobs and where
        the tagged ones may go: (`_current`, live members, their tags)."""
        return self._current(group), group.live(), group.live_tags()

    def _current(self, group: Any) -> dict[str, str]:
        """{job name: the live node that runs it, or else ran it last};
        this node for the runs here (claims included)."""
        root, index = self.root, self.index
        current = {}
        for path, name in index.paths.items():
            st = root.state_for(path, create=False)
            node = None if st is None else st.node or st.last_node
            if node is not None and group.is_live(node):
                current[name] = node
        me = root.node
        for path in index.runs:
            job = index.name_of(path)
            if job is not None and me is not None:
                current[job] = me
        return current

    def reassign(self) -> set[JobPath]:
        """Compute who runs which shared job (`_assign.assign`); return the
        paths of the jobs whose owner that changed."""
        self.stale = False
        root = self.root
        group = root.group
        if not root.policy.shares_jobs or group is None:
            return set()
        t0 = time.monotonic()
        try:
            return self._compute(group)
        finally:
            self._after = time.time() + _REASSIGN_SHARE * (time.monotonic() - t0)

    def _compute(self, group: Any) -> set[JobPath]:
        root, index = self.root, self.index
        self._inputs = current, live, tags = self._now(group)
        tagged = ((index.name_of(p), root.follow(p, create=False)) for p in self._tagged)
        allowed = allowed_nodes(((n, e.value) for n, e in tagged if n is not None and e is not None), live, tags)
        old, self.assignment = self.assignment, assign(index.names, live, current, allowed)
        return {index.names[n] for n, node in self.assignment.items() if old.get(n) != node}
