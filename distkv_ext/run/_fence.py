"""Stopping the code of runs while the event loop is stuck (`_loopwatch`).

Called in the watchdog's thread: the one call it makes into the loop is
``run_sync_soon``, and nothing it hands the loop may raise there (an
exception in ``run_sync_soon`` would end the event loop).
"""

import logging
from collections.abc import Mapping
from typing import Any

from ._claim import IllegalTransition, Phase
from ._running import Running

logger = logging.getLogger(__name__)

__all__ = ["fence_outside_loop"]


def fence_outside_loop(index_runs: Mapping[Any, Running], token: Any, reason: str) -> None:
    """The event loop is stuck (`_loopwatch`, called in its thread):
    stop the code of every run of ``index_runs`` that runs outside the
    loop (its worker thread or process), and fence the run once the loop
    moves again (``token``: the loop's ``TrioToken``; its
    ``run_sync_soon`` is the one call another thread may make)."""
    for _ in range(5):  # the loop thread may change the dict meanwhile
        try:
            runs = list(index_runs.values())
            break
        except RuntimeError:
            continue
    else:
        return
    for run in runs:
        ctx = run.ctx
        if ctx is None or not ctx.halts:
            continue  # its code runs in the loop (async): it cannot run while the loop is stuck
        token.run_sync_soon(_fence_stalled, run, reason)  # before the thread's end reaches the run
        ctx.halt()


def _fence_stalled(run: Running, reason: str) -> None:
    # in trio's run_sync_soon: an exception here would end the event loop
    if run.done.is_set() or run.claim.phase is Phase.RELEASED:
        return
    try:
        if run.claim.holds_state:
            run.fence(reason)  # others may hold it by now: write nothing
        else:
            run.stop(reason, restart=True)
    except IllegalTransition as exc:  # it ended meanwhile
        logger.debug("%s: not fenced: %r", run, exc)
