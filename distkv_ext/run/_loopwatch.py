"""A thread that notices a blocked event loop and fences: `LoopWatchdog`.

Sync and thread code runs in worker threads (`_threads`), so only async
code (and what it calls) runs in the event loop.  Async code that does not
await (``while True: pass``, ``time.sleep(60)``, a blocking read) keeps
the loop from doing anything else: no heartbeats, no claims, no stop.
The group then counts the runner as gone and another one starts its
jobs, while the frozen one still runs them in its threads: two at once.

So each runner root has a watchdog thread.  A task in the event loop
notes the time every ``limit / 10`` seconds; the thread checks it:

* once the loop has been stuck for ``runner.stall_limit`` (default: half
  of ``runner.timeout``) while the code of a job runs in it (a frame of a
  stored procedure on the loop thread's stack), `LoopStalled` is raised
  in that code (CPython's ``PyThreadState_SetAsyncExc``, as for thread
  jobs): its run ends as failed, the runner records the stall, and a job
  that stalled runners ``runner.quarantine_after`` times in a row is
  quarantined (``run why`` says so; ``run resume`` tries again);
* once the loop has been stuck for three quarters of ``runner.timeout``
  (the point at which the runner counts itself as cut off and the others
  may soon take its jobs over), the code of its shared jobs that runs
  outside the loop is stopped (``fence``): nothing runs here that another
  runner may be starting;
* if job code is still stuck in the loop then (it swallowed `LoopStalled`,
  or sits in a C call), the process exits (status 1; systemd restarts
  it): a runner that cannot stop a job must not keep it.

Code blocked inside one C call sees `LoopStalled` only when that call
returns.  The thread only reads what the loop thread owns, and hands
work back to the loop with ``run_sync_soon`` (thread-safe).
"""

import ctypes
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import anyio
import anyio.abc
import trio

from distkv_ext.codekit.core.compiler import source_name

from ._stopguard import hard_exit

logger = logging.getLogger(__name__)

__all__ = ["LoopStalled", "LoopWatchdog", "stalled_in"]

#: the real clock, also where tests patch ``time.monotonic`` with virtual
#: time: a stuck loop stops virtual time too
_now = time.perf_counter

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)

#: how the pseudo file names of stored procedures begin (see `source_name`)
_PROC_FILES = source_name("proc", "\0").partition("\0")[0]


class LoopStalled(BaseException):
    """Raised inside async job code that kept its runner's event loop busy
    for ``runner.stall_limit`` seconds.  A BaseException, so that
    ``except Exception`` in job code lets it pass."""

    def __str__(self) -> str:
        return "stalled the runner: its code kept the event loop busy (runner.stall_limit)"


def stalled_in(exc: BaseException) -> bool:
    """Is `LoopStalled` ``exc``, or in the exception group ``exc``?"""
    if isinstance(exc, LoopStalled):
        return True
    return any(stalled_in(e) for e in getattr(exc, "exceptions", ()))


def job_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost frame of a stored procedure on the stack of ``frame``, if any."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(_PROC_FILES):
            return frame
        frame = frame.f_back
    return None


class LoopWatchdog:
    """Watches its root's event loop (see the module doc).

    ``limit``: seconds of a stuck loop before job code in it is stopped;
    ``cutoff``: seconds after which ``fence(reason)`` is called (in the
    watchdog thread: it must only read the loop's data and use
    ``run_sync_soon``) and stuck job code ends the process (``on_stuck``,
    called with a message; in-process tests pass one that only logs);
    ``name``: for the log.

    The runner roots of one event loop (a daemon runs three) share one
    watchdog thread (`_Watcher`): one stall is stopped once.
    """

    def __init__(
        self,
        name: str,
        limit: float,
        cutoff: float,
        fence: Callable[[str], None],
        on_stuck: Callable[[str], None] = hard_exit,
    ) -> None:
        self.name = name
        self.on_stuck = on_stuck
        self.limit = limit
        self.cutoff = max(cutoff, limit)
        self.fence = fence
        self.tick = max(0.01, self.limit / 10)
        self.token: trio.lowlevel.TrioToken | None = None
        self._watcher: _Watcher | None = None

    @property
    def stalls(self) -> int:
        """How often job code was stopped in this loop (for tests)."""
        return 0 if self._watcher is None else self._watcher.stalls

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch until cancelled."""
        ident = threading.get_ident()
        self.token = trio.lowlevel.current_trio_token()
        with _LOCK:
            watcher = _WATCHERS.get(ident)
            if watcher is None:
                watcher = _WATCHERS[ident] = _Watcher(ident)
            watcher.add(self)
        self._watcher = watcher
        task_status.started()
        try:
            while True:  # every root beats: the loop moves as long as any one does
                watcher.beat = _now()
                await anyio.sleep(self.tick)
        finally:
            with _LOCK:
                if watcher.remove(self):
                    del _WATCHERS[ident]


_LOCK = threading.Lock()
#: loop thread -> its watcher
_WATCHERS: dict[int, "_Watcher"] = {}


class _Watcher:
    """The watchdog thread of one event loop, for its `LoopWatchdog`s."""

    def __init__(self, loop_ident: int) -> None:
        self.loop_ident = loop_ident
        self.beat = _now()
        self.stalls = 0
        self.dogs: list[LoopWatchdog] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, dog: LoopWatchdog) -> None:
        self.dogs.append(dog)
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name=f"watchdog {dog.name}", daemon=True)
            self._thread.start()

    def remove(self, dog: LoopWatchdog) -> bool:
        """Remove ``dog``; True when none is left (the thread ends)."""
        self.dogs.remove(dog)
        if not self.dogs:
            self._stop.set()
            return True
        return False

    def _watch(self) -> None:
        beat, raised, fenced = None, 0.0, False
        while True:
            dogs = list(self.dogs)
            if not dogs:
                return
            limit = min(d.limit for d in dogs)
            if self._stop.wait(min(d.tick for d in dogs)):
                return
            if self.beat != beat:  # the loop moved: a new stall starts from here
                beat, raised, fenced = self.beat, 0.0, False
                continue
            stuck = _now() - beat
            if stuck >= limit and stuck - raised >= limit:
                raised = stuck  # again every `limit` while it stays stuck (swallowed)
                self._stop_job_code(dogs[0].name, beat, stuck)
            if not fenced and stuck >= min(d.cutoff for d in dogs):
                fenced = True
                self._fence(dogs, beat, stuck)

    def _fence(self, dogs: list[LoopWatchdog], beat: float, stuck: float) -> None:
        reason = f"event loop stalled for {stuck:.1f} s"
        for dog in dogs:
            try:
                dog.fence(reason)
            except Exception:  # never let the watchdog die of it
                logger.exception("%s: fencing failed", dog.name)
        frame = job_frame(sys._current_frames().get(self.loop_ident))
        if frame is not None and self.beat == beat and not self._stop.is_set():
            dogs[0].on_stuck(
                f"{dogs[0].name}: job code kept the event loop busy for {stuck:.1f} s and did not stop"
                f" ({frame.f_code.co_filename}): exiting, so that no job runs twice"
            )

    def _stop_job_code(self, name: str, beat: float, stuck: float) -> None:
        frame = job_frame(sys._current_frames().get(self.loop_ident))
        if frame is None:
            logger.warning("%s: event loop stalled for %.1f s (not in job code)", name, stuck)
            return
        if self.beat != beat:
            return  # the loop moved on meanwhile: nothing to stop
        self.stalls += 1
        logger.error("%s: %s kept the event loop busy for %.1f s: stopping it", name, frame.f_code.co_filename, stuck)
        _set_async_exc(self.loop_ident, ctypes.py_object(LoopStalled))
