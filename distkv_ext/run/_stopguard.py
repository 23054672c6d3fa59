"""A daemon ends after SIGTERM, whatever its jobs do: `StopGuard`.

Stopping is cooperative: each job is cancelled and the daemon waits up to
``runner.stop_timeout`` for them.  Code that does not look at its stop
cannot be cancelled: a ``--thread`` job's loop (Python cannot stop a
thread), or sync code that keeps the event loop busy (then not even the
signal is seen by the loop).  Such a daemon used to ignore SIGTERM for
good, until systemd's ``kill -9``.

So a SIGTERM (or SIGINT) also starts a timer thread, from the signal
handler itself (Python runs it between two bytecodes of the main thread,
even while job code keeps the loop busy): if the daemon has not exited
``stop_timeout`` plus a grace later, the process exits at once (exit
status 1), naming the jobs that did not stop.  The claims of those jobs
are not handed over: the other runners take them once this runner's
heartbeats have been missing for ``runner.timeout``, by which time the
process (and with it every thread of its code) is gone.  Before it
exits, it SIGKILLs the children of process-mode jobs (`_procmode`) that
are still running: one that ignores its stop would otherwise outlive
its runner by ``runner.kill_grace``.
"""

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from ._procmode import kill_children

__all__ = ["StopGuard", "hard_exit"]

logger = logging.getLogger(__name__)

#: exit status of a daemon whose jobs did not stop in time
EXIT_STUCK = 1


def hard_exit(message: str) -> None:
    """Say ``message`` on stderr and in the log, kill the children of
    process-mode jobs, and end the process now (no cleanup: something in
    it cannot be stopped)."""
    kill_children()
    try:
        logger.error("%s", message)
        for h in logging.getLogger().handlers:
            h.flush()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        try:
            os.write(2, (message + "\n").encode("utf-8", "replace"))
        finally:
            os._exit(EXIT_STUCK)


class StopGuard:
    """``install()`` inside ``open_signal_receiver(...)``: the first
    SIGTERM/SIGINT also starts the timer (see the module doc).
    ``stuck()`` lists the jobs still running (called from the timer
    thread: it must only read); ``limit``: ``runner.stop_timeout``."""

    GRACE = 3.0

    def __init__(self, limit: float, stuck: Callable[[], Iterable[str]]) -> None:
        self.limit = limit
        self._stuck = stuck
        self._timer: threading.Timer | None = None

    def install(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        for sig in signals:
            prev = signal.getsignal(sig)

            def handler(signum: int, frame: FrameType | None, prev: Any = prev) -> None:
                self.start()
                if callable(prev):
                    prev(signum, frame)

            signal.signal(sig, handler)

    def start(self) -> None:
        """Start the timer (once)."""
        if self._timer is None:
            self._timer = threading.Timer(self.limit + self.GRACE, self._expired)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def message(self) -> str:
        try:
            names = ", ".join(sorted(self._stuck())) or "?"
        except Exception:  # read from another thread while it changed
            names = "?"
        return (
            f"jobs did not stop within runner.stop_timeout ({self.limit:g} s): {names}; exiting"
            " (their claims expire after runner.timeout)"
        )

    def _expired(self) -> None:
        hard_exit(self.message())
