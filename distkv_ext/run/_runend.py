"""What the write of a run's end says beyond its outcome (pure: the
caller writes the state): when the job is due next (`due_next`), and the
count of the runs that stalled their runner (`count_stall`)."""

import logging
import time

from ._entry import RunnerEntry, StateEntry
from ._schedule import next_start

__all__ = ["due_next", "count_stall", "MAX_STALLS"]

logger = logging.getLogger(__name__)

#: stalls remembered in a job's state (the names of the runners it stalled)
MAX_STALLS = 10


def due_next(entry: RunnerEntry, state: StateEntry, node: str) -> None:
    """Say in the write of a run's end when the job is due next and why
    (``computed``, ``reason``), as the scheduler's note would a moment
    later (`StateNotes.note`), which then finds nothing to change: one
    state write per run fewer, and every state write is sent on to each
    runner of the group (at 10,000 jobs the scheduler waited on these
    notes, one after the other, while due jobs waited for it).  ``node``:
    the runner that ran it."""
    try:
        t, why = next_start(entry, state, time.time(), node=node)
    except (TypeError, ValueError):  # the scheduler reports that entry
        return
    state.computed, state.reason = t or 0, why


def count_stall(state: StateEntry, node: str, quarantine_after: int) -> None:
    """The run ended because its code stalled runner ``node``: count it;
    ``quarantine_after`` stalls in a row quarantine the job."""
    stalls = [*(state.stalls or ()), node][-MAX_STALLS:]
    state.stalls = stalls
    if len(stalls) >= quarantine_after:
        state.quarantined = "stalled " + ", ".join(stalls[-quarantine_after:])
        state.reason = f"quarantined: {state.quarantined}"
        logger.error("%s: %s is quarantined: %s", node, state, state.quarantined)
