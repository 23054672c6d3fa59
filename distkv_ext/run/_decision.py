"""Whether and where a job runs, as a value: `Decision`.

`decide` is the one place that judges a job that does not run here: the
scheduler acts on its answer, and ``distkv client run why`` (`explain_job`)
puts it in words.  The scheduler gives it a `GroupView` (this node, the
live members, the assignment, whether the group is heard); ``run why``
has none, and then the answer is what any runner of the group would do.

Times are this machine's clock (``now``): `next_start` says how times
other machines wrote are read without comparing clocks; ``run why``
(no view) estimates with its own clock, for display.

Tags (`_placement`): a job that requires tags this node lacks is
NOT_HERE on an all-node or single-node runner; an any-node job goes only
to members with the tags (the assignment), and is NOT_HERE everywhere
while no live member has them.

`decide_running` judges a job that runs here: keep it, stop it (cut off
from the group) or move it (another node is assigned it).
"""

import dataclasses
import enum
from collections.abc import Collection, Mapping
from typing import Protocol

from moat.util import NotGiven

from ._placement import lacking, lacks_text, nobody_has, placement_of
from ._policy import RunnerPolicy
from ._schedule import History, Schedule, next_start, plan_start

__all__ = ["Kind", "Decision", "GroupView", "StaticView", "decide", "decide_running", "TAKEOVER"]

#: How the reason of a decision to take a job over from a node that is
#: gone begins (the metrics count these runs as failovers).
TAKEOVER = "taking over from"


class Kind(enum.Enum):
    """What a `Decision` says."""

    #: start it now: here (or, without a view, on a runner of the group);
    #: ``at`` is when it became due, ``reason`` why it starts
    RUN_HERE = "run here"
    #: its state names ``node``, which runs it (since ``at``, if known)
    HELD_BY = "held by"
    #: another node runs it: ``node``, the node it is assigned to (None:
    #: no live node has a weight); for a job running here: move it there
    ASSIGNED_TO = "assigned to"
    #: it starts at ``at`` (later), ``reason`` says why then
    WAITING = "waiting"
    #: it does not start at all: done, no target, gave up, deleted, no code
    NOT_SCHEDULED = "not scheduled"
    #: this node starts nothing now (the runner stops, the group is not
    #: heard yet, it is cut off); for a job running here: stop it
    BLOCKED = "blocked"
    #: it requires tags: this node lacks them (all-node, single-node), or
    #: no live member has them (any-node); ``reason`` names them
    NOT_HERE = "not here"


@dataclasses.dataclass(frozen=True)
class Decision:
    """A verdict on one job (see `Kind`)."""

    kind: Kind
    reason: str
    node: str | None = None
    at: float | None = None
    #: a calendar job's slot that a start now is for (None: it takes none)
    slot: float | None = None


class GroupView(Protocol):
    """What `decide` needs to know of this node's runner and its group."""

    @property
    def node(self) -> str:
        """This node's name."""

    @property
    def policy(self) -> RunnerPolicy:
        """The runner's kind."""

    @property
    def stopping(self) -> bool:
        """The runner is shutting down."""

    @property
    def ready(self) -> bool:
        """The group has been heard long enough to know its members."""

    @property
    def connected(self) -> bool:
        """This node's heartbeats come back: it reaches the group."""

    @property
    def assignment(self) -> Mapping[str, str | None]:
        """Job name -> the node that should run it (jobs shared by the group)."""

    def is_live(self, node: str) -> bool:
        """Is ``node`` a live member of the group (this node is)?"""

    @property
    def member_tags(self) -> Mapping[str, Collection[str]]:
        """{live member: its tags}, this node included."""


@dataclasses.dataclass(frozen=True)
class StaticView:
    """A fixed `GroupView` (for tests and tools)."""

    node: str
    policy: RunnerPolicy
    stopping: bool = False
    ready: bool = True
    connected: bool = True
    assignment: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    live: frozenset[str] = frozenset()
    tags: Mapping[str, Collection[str]] = dataclasses.field(default_factory=dict)

    def is_live(self, node: str) -> bool:
        return node == self.node or node in self.live

    @property
    def member_tags(self) -> Mapping[str, Collection[str]]:
        return {n: self.tags.get(n, ()) for n in {self.node, *self.live}}


def decide(
    entry: Schedule, state: History, now: float, view: GroupView | None = None, *, paused: str | None = None
) -> Decision:
    """The verdict on a job that does not run here.

    ``view`` None: judged from the entry and its state alone (``run why``).
    ``paused``: why the job is paused (``run pause``; `_pause.pause_reason`),
    or None: a paused job that no node runs is NOT_SCHEDULED with that
    reason, unless its state says "resume" (a run that was interrupted,
    or ``run trigger``: one run, then the pause holds again).
    Raises what `next_start` raises for fields of the wrong type.
    """
    if paused and entry.value is not NotGiven and not state.resume and state.node is None:
        return Decision(Kind.NOT_SCHEDULED, paused)  # before tags and plans: nothing to say of them
    if view is not None:
        if view.stopping:
            return Decision(Kind.BLOCKED, "runner stopping")
        if view.policy.shares_jobs:
            if not view.ready:
                return Decision(Kind.BLOCKED, "waiting to hear the group")
            if not view.connected:
                return Decision(Kind.BLOCKED, "cut off from the group")
            own = view.assignment.get(entry.job_name)
            if own != view.node:
                nobody = nobody_has(placement_of(entry.value), view.member_tags) if own is None else None
                if nobody and not _idle(entry, state, now, view.node):
                    return Decision(Kind.NOT_HERE, nobody)
                return Decision(Kind.ASSIGNED_TO, f"assigned to {own}", node=own)
        else:
            missing = lacking(placement_of(entry.value), view.member_tags.get(view.node, ()))
            if missing and not _idle(entry, state, now, view.node):
                return Decision(Kind.NOT_HERE, lacks_text(view.node, missing))
    plan = plan_start(entry, state, now, node=None if view is None else view.node)
    t, reason = plan.at, plan.reason
    if state.node is not None:
        if view is not None:
            if state.node == view.node:  # left by an earlier life of this runner
                if not view.ready:  # ... or run by a namesake: heard within `timeout`, it stops us
                    return Decision(Kind.BLOCKED, f"waiting to hear the group (a runner called {view.node} may run it)")
                return Decision(Kind.RUN_HERE, "restarting after this runner restarted", node=view.node, at=now)
            if view.policy.shares_jobs and not view.is_live(state.node):
                return Decision(Kind.RUN_HERE, f"{TAKEOVER} {state.node}", node=view.node, at=now)
        return Decision(Kind.HELD_BY, reason, node=state.node, at=state.started or None)
    if t is None:
        return Decision(Kind.NOT_SCHEDULED, reason)
    if t <= now:
        return Decision(Kind.RUN_HERE, reason, node=None if view is None else view.node, at=t, slot=plan.slot)
    return Decision(Kind.WAITING, reason, at=t, slot=plan.slot)


def _idle(entry: Schedule, state: History, now: float, node: str) -> bool:
    """Would the job not start at all, tags aside (done, no target, gave
    up)?  Then its tags are nothing to complain about."""
    return state.node is None and next_start(entry, state, now, node=node)[0] is None


def decide_running(job: str, view: GroupView, *, rebalance: bool) -> Decision:
    """The verdict on the job named ``job`` that runs here: RUN_HERE (keep
    it), BLOCKED (stop it: cut off from the group, others take it over) or
    ASSIGNED_TO (move it; only with ``rebalance``).  The reason is the one
    to stop it with."""
    if not view.policy.shares_jobs or view.stopping:
        return Decision(Kind.RUN_HERE, "running here", node=view.node)
    if not view.connected:
        return Decision(Kind.BLOCKED, "cut off from the group")
    own = view.assignment.get(job, view.node)
    if own == view.node or not rebalance:
        return Decision(Kind.RUN_HERE, "running here", node=view.node)
    return Decision(Kind.ASSIGNED_TO, f"moved to {own}", node=own)
