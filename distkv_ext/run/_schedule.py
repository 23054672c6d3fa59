"""When a job starts next: `next_start`, from its runner entry and state.

Machines' clocks differ (a Raspberry Pi without a real-time clock boots
with a wrong one), so a runner never compares its clock with a time
another machine wrote; `next_start` says how it reads them instead.
"""

import time
from typing import Any, Protocol

from moat.util import NotGiven

from ._calendar import Calendar
from ._calplan import Plan, calendar_plan
from ._entry import is_time

__all__ = ["Schedule", "History", "Plan", "next_start", "plan_start", "retry_delay", "claim_lead", "CLAIM_LEAD"]

#: seconds a start is claimed ahead, besides the claim's settle time
CLAIM_LEAD = 0.15


class Schedule(Protocol):
    """The fields of a runner entry that say when it starts (`RunnerEntry`,
    or a stand-in for a stored value)."""

    value: Any
    code: Any
    target: Any
    written: Any
    repeat: Any
    delay: Any
    backoff: Any
    max_delay: Any
    max_tries: Any
    cron: Any
    at: Any
    tz: Any
    location: Any
    jitter: Any
    overlap: Any
    catch_up: Any
    catch_up_window: Any

    @property
    def job_name(self) -> str:
        """The job's name within its group."""


class History(Protocol):
    """The fields of a state entry that say when its job starts next
    (a `StateEntry` also has ``heard_at``; a stored value has not)."""

    node: Any
    last_node: Any
    started: Any
    stopped: Any
    resume: Any
    reason: Any
    backoff: Any
    for_target: Any
    quarantined: Any
    triggered: Any
    skipped_slot: Any
    queued: Any


def retry_delay(entry: Schedule, n_errors: int) -> float:
    """Seconds to wait before retry number ``n_errors`` (>= 1)."""
    d = float(entry.delay or 0) * float(entry.backoff or 1) ** max(0, n_errors - 1)
    if entry.max_delay:
        d = min(d, float(entry.max_delay))
    return d


def next_start(
    entry: Schedule, state: History, now: float | None = None, *, node: str | None = None
) -> tuple[float | None, str]:
    """When the job should start next: ``(time, reason)`` of `plan_start`."""
    p = plan_start(entry, state, now, node=node)
    return p.at, p.reason


def plan_start(entry: Schedule, state: History, now: float | None = None, *, node: str | None = None) -> Plan:
    """When the job should start next: a `Plan` (time, reason, and for a
    calendar job the slot it starts for), on this machine's clock (``now``).

    ``time`` is None when it should not start at all (the reason says
    why); a time <= now means: start now.  ``node``: this runner's name
    (None: judged from elsewhere, ``run why``).

    Machines' clocks differ (a Raspberry Pi without a real-time clock
    boots with a wrong one), so no time another machine wrote is compared
    with ``now``:

    * A target is new when it differs from the one the last run started
      for (the state's ``for_target``), also when it is earlier; only a
      state without that field (an older runner's, DistKV's) falls back
      to ``target > started``.
    * A target is a calendar time, due when ``now`` reaches it, except
      that a target at or before the entry's ``written`` (both the
      writer's clock: "now", "in the past") is due at once.
    * A state with ``resume`` and ``triggered`` (``run trigger``) starts
      at once, with or without a target (the run leaves ``for_target``
      as it was: the schedule is not consumed).
    * Resume, retry and repeat count from the end of the last run: on
      ``stopped`` if this node wrote it (``last_node``); else from when
      this node heard of that end (``state.heard_at``: never early, late
      by the news's delay, or, for a state loaded at start, by at most one
      wait).  Without a ``node`` or ``heard_at`` (``run why``), from
      ``stopped``: an estimate, for display.
    * A calendar job (``cron`` or ``at``; target and repeat, if another
      client wrote them too, are ignored) starts by its slots: see
      `_calplan`.  Its slots are calendar times, like a target.

    Raises ValueError or TypeError for fields that make no schedule.
    """
    if now is None:
        now = time.time()
    if entry.value is NotGiven:
        return Plan(None, "deleted")
    if entry.code is None:
        return Plan(None, "no code")
    if _triggered(state):
        return Plan(now, f"triggered {state.triggered}")  # `run trigger`: once, now, whatever the target says
    cal = Calendar.of(entry)
    target = entry.target or 0
    if not target and cal is None:
        return Plan(None, "no target")
    if state.node is not None:
        return Plan(None, f"running on {state.node}")
    if isinstance(state.quarantined, str) and state.quarantined:
        return Plan(None, f"quarantined: {state.quarantined}; `run resume` to try again")
    if cal is not None:
        return _calendar(cal, entry, state, now, node)
    t, reason = _by_target(entry, state, now, node, target)
    return Plan(t, reason)


def _calendar(cal: Calendar, entry: Schedule, state: History, now: float, node: str | None) -> Plan:
    since = _ended_at(state, node)
    retry_at, why = None, ""
    if state.backoff and not (entry.max_tries and state.backoff >= entry.max_tries):
        retry_at, why = since + retry_delay(entry, state.backoff), f"retry after error {state.backoff}"
    return calendar_plan(cal, entry, state, now, since, retry_at, why)


def _by_target(
    entry: Schedule, state: History, now: float, node: str | None, target: float
) -> tuple[float | None, str]:
    if _new_target(target, state):
        written = entry.written
        if is_time(written) and target <= written:
            return min(target, now), "target"  # "now" by the writer's clock
        return target, "target"
    since = _ended_at(state, node)
    if state.resume:
        return since, f"resume ({state.reason})" if state.reason else "resume"
    if state.backoff:
        if entry.max_tries and state.backoff >= entry.max_tries:
            return None, f"gave up after {state.backoff} errors"
        return since + retry_delay(entry, state.backoff), f"retry after error {state.backoff}"
    if entry.repeat:
        return since + float(entry.repeat), "repeat"
    return None, "done"


def _triggered(state: History) -> bool:
    """Does the state ask for one run now (``run trigger``), and may it start?"""
    quarantined = isinstance(state.quarantined, str) and state.quarantined
    return bool(state.node is None and state.resume and not quarantined and isinstance(state.triggered, str))


def _new_target(target: float, state: History) -> bool:
    """Is ``target`` one that no run has started for yet?"""
    consumed = state.for_target
    if is_time(consumed):
        return bool(target != consumed)
    return bool(target > (state.started or 0))  # an older runner's state: its clock, the best we have


def _ended_at(state: History, node: str | None) -> float:
    """When the last run ended, on this machine's clock (see `next_start`)."""
    stopped = float(state.stopped or 0)
    if node is None or state.last_node == node:
        return stopped
    heard = getattr(state, "heard_at", None)  # a stored value (run why) has none
    if heard is None:
        return stopped
    return float(heard)


def claim_lead(entry: Any, settle: float, claims: bool, write: float = 0.0) -> float:
    """How long before a start at a known time its claim begins: the claim's
    ``settle`` time (``claims``: jobs of a group) and a state write (how
    long one takes lately, ``write``, at least `CLAIM_LEAD`), and for a
    job with limits (``entry.limits``) the two ``settle`` times a slot's
    claim takes."""
    limited = 2 * settle if isinstance(entry.limits, dict) and entry.limits else 0.0
    return (settle if claims else 0.0) + limited + max(CLAIM_LEAD, write)
