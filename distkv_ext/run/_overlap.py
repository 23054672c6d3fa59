"""A calendar job's start that comes due while its last run still runs
(``overlap``): `mind_overlap`, called by the scheduler of the node that
runs it (no other node knows that the run still runs).

* ``skip`` (the default): the start is skipped: the state counts it
  (``skipped``), remembers it (``skipped_slot``: so it is not caught up
  later) and says why (``skip_note``);
* ``queue``: the state names it (``queued``); it starts once the run has
  ended (`_calplan`).  Of several starts due during one run only the
  latest starts; the others count as skipped;
* ``cancel``: the run is stopped ("cancelled: the start of ... is due
  (overlap cancel)") and the start is queued: it starts at once.
"""

import logging

import anyio

from ._calendar import Calendar
from ._calplan import calendar_base
from ._entry import WRITE_ERRORS, RunnerEntry, StateEntry, is_time
from ._running import Running

logger = logging.getLogger(__name__)

__all__ = ["mind_overlap"]

#: starts handled at most in one look (a runner that was stuck for days)
_MAX_DUE = 1000


async def mind_overlap(entry: RunnerEntry, run: Running, node: str, now: float, write_seconds: float) -> float | None:
    """Handle the starts of ``entry`` (a calendar job that ``run`` runs
    here, on ``node``) that are due by ``now`` (see the module doc);
    return when the next one is due (None: look again on change)."""
    state = entry.state
    if run.claim.stop_requested or not run.claim.holds_state or state.node != node:
        return None
    try:
        cal = Calendar.of(entry)
    except (TypeError, ValueError):
        return None
    if cal is None:
        return None
    policy = entry.overlap or "skip"
    changed = False
    queued = float(state.queued) if state.queued is not None and is_time(state.queued) else None
    after = max(calendar_base(entry, state, now), queued or 0.0)
    ft = state.for_target
    ran = cal.text(float(ft)) if ft is not None and is_time(ft) else "the last start"
    for _ in range(_MAX_DUE):
        slot, _notes = cal.next_after(after)
        if slot is None:
            break
        if cal.due(slot) > now:
            if changed:
                await _save(state, write_seconds)
            return cal.due(slot)
        changed = True
        after = slot
        if policy == "skip":
            _skipped(state, slot, f"skipped {cal.text(slot)}: the run of {ran} still ran (overlap skip)")
            continue
        if queued is not None:
            _skipped(state, queued, f"skipped {cal.text(queued)}: {cal.text(slot)} came due while it waited ({policy})")
        state.queued = queued = slot
        if policy == "cancel":
            await _save(state, write_seconds)  # before the stop: the run's end writes the state again
            run.stop(f"cancelled: the start of {cal.text(slot)} is due (overlap cancel)")
            return None
    if changed:
        await _save(state, write_seconds)
    return None


def _skipped(state: StateEntry, slot: float, note: str) -> None:
    state.skipped = int(state.skipped or 0) + 1
    state.skipped_slot = slot
    state.skip_note = note
    logger.info("%s: %s", state, note)


async def _save(state: StateEntry, seconds: float) -> None:
    try:  # bookkeeping: a slow write is no reason to fence
        with anyio.fail_after(seconds):
            await state.save()
    except (*WRITE_ERRORS, TimeoutError) as exc:
        logger.debug("could not note a skipped start of %s: %r", state, exc)
