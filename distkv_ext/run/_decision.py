"""Whether and where a job runs, as a value: `Decision`.

`decide` is the one place that judges a job that does not run here: the
scheduler acts on its answer, and ``distkv client run why`` (`explain_job`)
puts it in words.  The scheduler gives it a `GroupView` (this node, the
live members, the assignment, whether the group is heard); ``run why``
has none, and then the answer is what any runner of the group would do.

Times are this machine's clock (``now``): `next_start` says how times
other machines wrote are read without comparing clocks; ``run why``
(no view) estimates with its own clock, for display.

`decide_running` judges a job that runs here: keep it, stop it (cut off
from the group) or move it (another node is assigned it).
"""

import dataclasses
import enum
from collections.abc import Mapping
from typing import Protocol

from ._policy import RunnerPolicy
from ._schedule import History, Schedule, plan_start

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

    def is_live(self, node: str) -> bool:
        return node == self.node or node in self.live


def decide(entry: Schedule, state: History, now: float, view: GroupView | None = None) -> Decision:
    """The verdict on a job that does not run here.

    ``view`` None: judged from the entry and its state alone (``run why``).
    Raises what `next_start` raises for fields of the wrong type.
    """
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
                return Decision(Kind.ASSIGNED_TO, f"assigned to {own}", node=own)
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
