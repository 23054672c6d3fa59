"""The claim of one job by this node: a state machine.

Before a node runs a job it *claims* it, and it must give the claim up
only once the job's code has really stopped ("never two at once").  A
`Claim` is that story for one run here, as a `Phase` and the transitions
between phases, all in `TRANSITIONS`; every change goes through one of
the methods below, which raise `IllegalTransition` for a transition the
table does not have.

Phases::

    CLAIMING ──settled──▶ WRITING ──wrote──▶ HELD ──stop──▶ STOPPING
       │  beat, cut off      │ write failed    │                │
       ▼                     ▼                 │ fence          │ fence
     BEATEN ◀────────────────┘                 ▼                ▼
                                             FENCED ◀───────────┘
    (stop before the state names us: ABANDONED; every phase: release ▶ RELEASED)

* CLAIMING: any-node jobs: the claim went out on the group's channel; we
  wait ``settle`` seconds.  A "held" answer, or a claim of a node with a
  higher rendezvous score, beats us.
* BEATEN: we did not get the job (beaten, cut off when the settle ended,
  or the state write failed); nothing more is written.
* WRITING: we won (jobs without claims start here); we write the job's
  state naming this node, and already answer claims with "held".
* HELD: the state names us; the code runs.
* STOPPING: a stop was requested (`StopRequest`: why, resume it?, delete
  its state?) after the state named us: the end writes the state.
* ABANDONED: a stop was requested before the state named us: nothing is
  written, unless the write completes after all (then STOPPING).
* FENCED: another node holds the job (its state names it, or it runs
  the job and wins the tie-break): the run stops and writes nothing.
* RELEASED: the run is over and the scheduler has forgotten it.

`Claim` holds no I/O: the scheduler and the run (`_lifecycle`) ask it
what to do and tell it what happened.
"""

import dataclasses
import enum

__all__ = ["Phase", "Event", "TRANSITIONS", "StopRequest", "Claim", "IllegalTransition"]


class Phase(enum.Enum):
    """Where a claim stands (see the module doc)."""

    CLAIMING = "claiming"
    BEATEN = "beaten"
    WRITING = "writing"
    HELD = "held"
    STOPPING = "stopping"
    ABANDONED = "abandoned"
    FENCED = "fenced"
    RELEASED = "released"


class Event(enum.Enum):
    """What can happen to a claim."""

    BEAT = "beat"  # a "held" answer or a better claim while claiming
    SETTLED = "settled"  # the settle time is over, and we hear the group
    CUT_OFF = "cut off"  # the settle time is over, and we are cut off
    WROTE = "wrote"  # the state naming us is written
    WRITE_FAILED = "write failed"
    STOP = "stop"  # stop the run (see `StopRequest`)
    FENCE = "fence"  # another node holds the job
    RELEASE = "release"  # the run is over


_P, _E = Phase, Event

#: (phase, event) -> next phase.  Whatever is not here is illegal.
TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (_P.CLAIMING, _E.BEAT): _P.BEATEN,
    (_P.CLAIMING, _E.SETTLED): _P.WRITING,
    (_P.CLAIMING, _E.CUT_OFF): _P.BEATEN,
    (_P.CLAIMING, _E.STOP): _P.ABANDONED,
    (_P.CLAIMING, _E.RELEASE): _P.RELEASED,
    # beaten early (a recent better claim): the settle still runs its course
    (_P.BEATEN, _E.BEAT): _P.BEATEN,
    (_P.BEATEN, _E.SETTLED): _P.BEATEN,
    (_P.BEATEN, _E.CUT_OFF): _P.BEATEN,
    (_P.BEATEN, _E.STOP): _P.ABANDONED,
    (_P.BEATEN, _E.RELEASE): _P.RELEASED,
    (_P.WRITING, _E.WROTE): _P.HELD,
    (_P.WRITING, _E.WRITE_FAILED): _P.BEATEN,
    (_P.WRITING, _E.STOP): _P.ABANDONED,
    (_P.WRITING, _E.FENCE): _P.FENCED,
    (_P.WRITING, _E.RELEASE): _P.RELEASED,
    (_P.HELD, _E.STOP): _P.STOPPING,
    (_P.HELD, _E.FENCE): _P.FENCED,
    (_P.HELD, _E.RELEASE): _P.RELEASED,
    (_P.STOPPING, _E.STOP): _P.STOPPING,
    (_P.STOPPING, _E.FENCE): _P.FENCED,
    (_P.STOPPING, _E.RELEASE): _P.RELEASED,
    # stopped while claiming or writing: the steps under way may still end
    (_P.ABANDONED, _E.BEAT): _P.ABANDONED,
    (_P.ABANDONED, _E.SETTLED): _P.ABANDONED,
    (_P.ABANDONED, _E.CUT_OFF): _P.ABANDONED,
    (_P.ABANDONED, _E.WROTE): _P.STOPPING,  # the write got through: the end clears it
    (_P.ABANDONED, _E.WRITE_FAILED): _P.ABANDONED,
    (_P.ABANDONED, _E.STOP): _P.ABANDONED,
    (_P.ABANDONED, _E.RELEASE): _P.RELEASED,
    # fenced while writing: the write may still end; nothing changes then
    (_P.FENCED, _E.WROTE): _P.FENCED,
    (_P.FENCED, _E.WRITE_FAILED): _P.FENCED,
    (_P.FENCED, _E.STOP): _P.FENCED,
    (_P.FENCED, _E.RELEASE): _P.RELEASED,
}


class IllegalTransition(RuntimeError):
    """A claim was told something that cannot happen in its phase (a bug)."""


@dataclasses.dataclass(frozen=True)
class StopRequest:
    """Why a run stops: ``reason`` (in words, stored in the state),
    ``restart``: resume the job at once (here or elsewhere),
    ``delete_state``: its entry is gone, remove its state too."""

    reason: str
    restart: bool = False
    delete_state: bool = False

    def merge(self, reason: str, *, restart: bool = False, delete_state: bool = False) -> "StopRequest":
        """A later request: the first reason stays, the flags add up."""
        return StopRequest(self.reason, self.restart or restart, self.delete_state or delete_state)


class Claim:
    """The claim of one job by this node (see the module doc).

    ``Claim(over_channel=True)`` starts CLAIMING (any-node jobs), else
    WRITING (single-node and all-node jobs: nobody else runs them).
    """

    __slots__ = ("phase", "stop", "fenced_by")

    def __init__(self, *, over_channel: bool) -> None:
        self.phase = Phase.CLAIMING if over_channel else Phase.WRITING
        #: the stop requested, if any (kept through FENCED and RELEASED)
        self.stop: StopRequest | None = None
        #: why we were fenced, in words
        self.fenced_by: str | None = None

    def __repr__(self) -> str:
        return f"<Claim {self.phase.name}{f' stop={self.stop.reason!r}' if self.stop else ''}>"

    def _go(self, event: Event) -> Phase:
        nxt = TRANSITIONS.get((self.phase, event))
        if nxt is None:
            raise IllegalTransition(f"claim in phase {self.phase.name} cannot take event {event.name}")
        self.phase = nxt
        return nxt

    # --- transitions ---

    def beat(self) -> Phase:
        """Another node holds the job or has the better claim."""
        return self._go(Event.BEAT)

    def settled(self, *, connected: bool) -> Phase:
        """The settle time is over; ``connected``: we still hear the group."""
        return self._go(Event.SETTLED if connected else Event.CUT_OFF)

    def wrote(self) -> Phase:
        """The job's state now names this node."""
        return self._go(Event.WROTE)

    def write_failed(self) -> Phase:
        """The state could not be written: we do not hold the job."""
        return self._go(Event.WRITE_FAILED)

    def request_stop(self, reason: str, *, restart: bool = False, delete_state: bool = False) -> Phase:
        """Stop the run: the first reason stays, ``restart`` and
        ``delete_state`` add up over repeated requests."""
        phase = self._go(Event.STOP)
        if self.stop is None:
            self.stop = StopRequest(reason, restart, delete_state)
        else:
            self.stop = self.stop.merge(reason, restart=restart, delete_state=delete_state)
        return phase

    def fence(self, reason: str) -> Phase:
        """Another node holds the job: stop, write nothing."""
        phase = self._go(Event.FENCE)
        self.fenced_by = reason
        if self.stop is None:
            self.stop = StopRequest(reason)
        return phase

    def release(self) -> Phase:
        """The run is over."""
        return self._go(Event.RELEASE)

    # --- queries ---

    @property
    def contested(self) -> bool:
        """Claiming: another node's "held", or its claim with a better
        score, beats us."""
        return self.phase is Phase.CLAIMING

    @property
    def answers_claims(self) -> bool:
        """We hold the job (or are writing its state): answer a claim
        with "held"; a "held" of a node with a better score fences us."""
        return self.phase in (Phase.WRITING, Phase.HELD)

    @property
    def stop_requested(self) -> bool:
        """The run is on its way out: for the group it is as good as
        gone (its claims are remembered, running jobs are not checked)."""
        return self.phase in (Phase.STOPPING, Phase.ABANDONED, Phase.FENCED, Phase.RELEASED)

    @property
    def may_write(self) -> bool:
        """Only in WRITING: go on and write the state naming us."""
        return self.phase is Phase.WRITING

    @property
    def holds_state(self) -> bool:
        """Our state write got through and no other node took the job: a
        state entry naming another node fences us, and at the end of the
        run the state is ours to write."""
        return self.phase in (Phase.HELD, Phase.STOPPING)
