"""When a calendar job (``cron`` or ``at``) starts next: `calendar_plan`,
the calendar half of `_schedule.plan_start`, and the start times that
``run next`` shows (`upcoming`).

Which slots are taken (the *base*: the latest of the slot the last run
started for, ``for_target``, and the latest slot skipped,
``skipped_slot``, unless the state names another calendar,
``for_calendar``): the next slot after it.  A calendar new to the state
(a new job, an edited calendar) starts at its first slot after a minute ago
(`START_GRACE`) on the runner's clock: never counted from the writer's
clock (``written``).

* Missed slots (their due time passed, `DUE_GRACE` seconds ago or more,
  while no run started for them: the whole group was down): with ``catch_up: once`` (the default) the
  latest of them starts once, now, if it is at most ``catch_up_window``
  seconds old (default 3600); else, or with ``catch_up: none``, the job
  waits for its next slot and the plan says what it missed.
* A start due while the last run still runs is the running node's
  business (`_overlap`): ``skip`` counts it in the state (``skipped``,
  ``skipped_slot``), ``queue`` and ``cancel`` name it in ``queued``, which
  starts as soon as the run has ended.
* ``resume`` (an operator's resume or trigger, a run that was moved)
  starts at once and takes no slot.
* An error is retried as for any job (``delay``, ``backoff``,
  ``max_tries``); the next slot starts anyway, also after giving up.
"""

import dataclasses
from typing import Any

from ._calendar import Calendar
from ._entry import is_time

__all__ = [
    "Plan",
    "calendar_plan",
    "upcoming",
    "take_slot",
    "START_GRACE",
    "calendar_base",
    "calendar_key",
    "window_of",
]

#: How old a slot of a calendar new to the job's state may be to start.
START_GRACE = 60.0
#: A start whose due time passed less than this many seconds ago is due,
#: not missed (a busy runner is late, not down): it starts, catch-up or not.
DUE_GRACE = 30.0
#: Slots looked at in one pass, catching up (`_latest_due`)
_MAX_SCAN = 2_000


@dataclasses.dataclass(frozen=True)
class Plan:
    """When a job starts next (``at``: None: not at all; <= now: now),
    why (``reason``), and for a calendar job the slot that start is for
    (``slot``; None: it takes none: a resume or retry); ``note``: what it
    missed on the way, for ``run why``."""

    at: float | None
    reason: str
    slot: float | None = None
    note: str | None = None


def calendar_base(entry: Any, state: Any, now: float) -> float:
    """After which time the job's slots are still to be started (see the module doc)."""
    base = _known_base(entry, state)
    return now - START_GRACE if base is None else base


def calendar_key(entry: Any) -> str:
    """What makes a job's calendar the one it is (cron or sun time, zone,
    place), as the state's ``for_calendar`` records it."""
    return f"{entry.cron or entry.at}|{entry.tz}|{entry.location or ''}"


def _known_base(entry: Any, state: Any) -> float | None:
    """The latest slot of this calendar that was started or skipped;
    None for a calendar new to the state (a new job, an edited calendar,
    a job that had a target before).  Never the writer's clock
    (``written``): a time another machine wrote is no slot of ours."""
    recorded = getattr(state, "for_calendar", None)
    if recorded is not None and recorded != calendar_key(entry):
        return None  # (a state without it: a run of this calendar, or of a target before it)
    fields = (state.for_target, getattr(state, "skipped_slot", None))
    cands = [float(v) for v in fields if v is not None and is_time(v)]
    return max(cands) if cands else None


def window_of(entry: Any) -> float:
    """The job's catch-up window in seconds (default 3600)."""
    w = entry.catch_up_window
    return float(w) if is_time(w) and w >= 0 else 3600.0


def _late_limit(entry: Any) -> float:
    """How long after it fell due a start may still be made up for: the
    catch-up window, or only `DUE_GRACE` with ``catch_up: none``."""
    return DUE_GRACE if entry.catch_up == "none" else max(window_of(entry), DUE_GRACE)


def _span(seconds: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return f"{seconds / n:g}{unit}"
    return f"{seconds:g}s"


def calendar_plan(
    cal: Calendar, entry: Any, state: Any, now: float, ended_at: float, retry_at: float | None, retry_reason: str
) -> Plan:
    """The next start of a calendar job that does not run (see the module
    doc); ``ended_at``: when its last run ended on this machine's clock
    (`_schedule`); ``retry_at``: when a failed run is retried (None: not)."""
    if state.resume:
        return Plan(ended_at, f"resume ({state.reason})" if state.reason else "resume")
    known = _known_base(entry, state)
    base = now - START_GRACE if known is None else known
    q = getattr(state, "queued", None)
    queued = float(q) if q is not None and is_time(q) else None
    if queued is not None and queued > base and now - ended_at <= _late_limit(entry):
        # (a queued start waits for the run's end, not for a pause or the group's downtime)
        return Plan(ended_at, f"the start of {cal.text(queued)} was due while it ran ({entry.overlap})", slot=queued)
    if known is None:  # a calendar new to the state: its slot of the last minute, nothing older
        p = _slot_plan(cal, base, now, "once", START_GRACE)
    else:
        p = _slot_plan(cal, base, now, entry.catch_up or "once", window_of(entry))
    if retry_at is not None and (p.at is None or retry_at < p.at):
        return Plan(retry_at, retry_reason, note=p.note)
    return p


def _latest_due(cal: Calendar, start: float, now: float) -> tuple[float | None, float | None]:
    """(the latest slot after ``start`` due by ``now``, the first one not
    due yet); at most about `_MAX_SCAN` slots a pass: a scan that would
    take more starts again nearer to ``now`` (a per-second cron and a
    catch-up window of a year are 31 million slots, of which only the
    latest matters)."""
    while True:
        latest = pending = None
        for n, slot in enumerate(cal.slots(start)):
            if slot > now or cal.due(slot) > now:
                return latest, slot
            if n >= _MAX_SCAN:
                break
            latest = slot
        else:
            return latest, pending
        start = now - (now - start) / 16  # too many: the latest is in the last sixteenth


def _slot_plan(cal: Calendar, base: float, now: float, catch_up: str, window: float) -> Plan:
    first, notes = cal.next_after(base)
    if first is None:
        return Plan(None, "; ".join(notes))
    if cal.due(first) > now:
        return _waiting(cal, first, notes)
    # due: the latest slot due by now, if its due time passed only just
    # (the scheduler wakes a little late; a claim takes a while); older
    # ones were missed (due while no runner started them)
    latest, pending = _latest_due(cal, max(base, now - max(window, DUE_GRACE) - cal.jitter), now)
    if latest is not None and now - cal.due(latest) < DUE_GRACE:
        return _waiting(cal, latest, notes)
    if latest is not None and latest < now - window:
        latest = None
    if latest is not None and catch_up == "once":
        return Plan(cal.due(latest), f"catching up the start of {cal.text(latest)} ({cal.what})", slot=latest)
    if latest is not None:
        note = f"missed {cal.text(latest)} (catch-up none)"
    else:
        n, last = _missed(cal, first, now)
        what = cal.text(last) if n == 1 else f"{n}{'+' if n >= _MAX_NAMED else ''} starts, the last {cal.text(last)}"
        why = "catch-up none" if catch_up == "none" else f"outside the {_span(window)} catch-up window"
        note = f"missed {what} ({why})"
    if pending is None:
        pending, more_notes = cal.next_after(now)
        notes = notes + more_notes
        if pending is None:
            return Plan(None, "; ".join([note, *notes]), note=note)
    p = _waiting(cal, pending, notes)
    return dataclasses.replace(p, reason=f"{p.reason}; {note}", note=note)


#: missed starts counted at most, to name the last one
_MAX_NAMED = 1000


def _missed(cal: Calendar, first: float, now: float) -> tuple[int, float]:
    """(how many, the last) of the slots from ``first`` (missed) on that
    are due by ``now`` (counted up to `_MAX_NAMED`; then the last counted)."""
    n, last = 1, first
    for s in cal.slots(first):
        if cal.due(s) > now or n >= _MAX_NAMED:
            break
        n, last = n + 1, s
    return n, last


def _waiting(cal: Calendar, slot: float, notes: list[str]) -> Plan:
    reason = f"{cal.what}: {cal.text(slot)}"
    j = cal.jitter_of(slot)
    if cal.jitter:
        reason += f" (+{j:.0f} s jitter)"
    if notes:
        reason += f" ({'; '.join(notes)})"
    return Plan(cal.due(slot), reason, slot=slot)


def upcoming(cal: Calendar, plan: Plan, entry: Any, state: Any, now: float, count: int) -> list[float]:
    """The next ``count`` start times of a calendar job (jitter included),
    the first being ``plan``'s (a running job: its next slots)."""
    res: list[float] = []
    after = now
    if plan.at is not None:
        res.append(plan.at)
        after = max(plan.slot, now) if plan.slot is not None else now
    elif state.node is not None:
        after = max(calendar_base(entry, state, now), now)
    else:
        return res
    for s in cal.slots(after):
        if len(res) >= count:
            break
        if plan.slot is None or s > plan.slot:
            res.append(cal.due(s))
    return res[:count]


def take_slot(entry: Any, state: Any, slot: float | None, now: float) -> None:
    """A run of the calendar job ``entry`` starts for ``slot`` (None: a
    resume, retry or trigger, which takes no slot): record it in
    ``state`` (``for_target``), count the slots it passes over as skipped
    (missed while no runner ran it), and clear a queued start it serves."""
    if slot is None:
        return
    try:
        cal = Calendar.of(entry)
    except (TypeError, ValueError):
        cal = None
    base = _known_base(entry, state)
    if cal is not None and base is not None:
        missed = cal.count_between(base, slot)
        if missed:
            state.skipped = int(state.skipped or 0) + missed
            state.skip_note = f"missed {missed} start{'s' if missed > 1 else ''} before {cal.text(slot)}"
    state.for_target = slot
    state.for_calendar = calendar_key(entry)
    if is_time(state.queued) and state.queued <= slot:
        state.queued = None
