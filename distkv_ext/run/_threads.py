"""Sync and thread jobs run in a worker thread that can be stopped:
`run_stoppable`.

Sync code (``is_async`` None, DistKV's default) used to run in the event
loop: ``while True: pass`` froze the runner (no heartbeats, no stop, no
signal), and as the group took the job over, every runner of it in turn.
Thread code (``is_async`` False) ran in a worker thread that nothing could
stop: after ``run delete``, a move or a fence it went on, and its runner
could not be stopped.

Now both run in a worker thread, so the event loop goes on (the thread
holds the GIL at most ``sys.getswitchinterval()`` at a time).  When the
job is stopped, `JobStopped` is raised inside the thread (CPython's
``PyThreadState_SetAsyncExc``): Python code stops at its next bytecode, a
``finally`` runs.  Code blocked inside one C call (``time.sleep(3600)``,
a read from a device) sees it when that call returns.  Until the code
has really ended, the run does not end: its claim stays held (nobody
else starts the job) and ``run why`` shows it running here.

The exception is only raised while the job's function runs in that
thread: worker threads are reused, and one pending when the function ends
is withdrawn.
"""

import contextlib
import ctypes
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel

__all__ = ["JobStopped", "run_stoppable"]


class JobStopped(BaseException):
    """Raised inside a job's worker thread when the job is stopped.  A
    BaseException, so that ``except Exception`` in job code lets it pass."""


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


class _ThreadRun:
    """One call of a function in a worker thread, stoppable (see the module doc)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.lock = threading.Lock()
        self.ident: int | None = None  # while fn runs in it
        self.stop_requested = False

    def work(self) -> Any:
        with self.lock:
            if self.stop_requested:
                raise JobStopped("stopped before it started")
            self.ident = threading.get_ident()
        try:
            return self.fn()
        finally:
            with self.lock:
                ident, self.ident = self.ident, None
            if ident is not None:  # withdraw one that came too late to matter
                _set_async_exc(ident, ctypes.py_object())

    def stop(self) -> None:
        with self.lock:
            self.stop_requested = True
            if self.ident is not None:
                _set_async_exc(self.ident, ctypes.py_object(JobStopped))


async def run_stoppable(
    fn: Callable[[], Any],
    *,
    limiter: anyio.CapacityLimiter | None = None,
    halts: list[Callable[[], None]] | None = None,
    on_start: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """``fn()`` in a worker thread; its result.  Cancelling the caller
    raises `JobStopped` inside the thread and waits until the function has
    ended (however long that takes), then raises the cancellation.

    ``limiter``: holds one of its tokens while the function runs (it waits
    for one first: ``runner.threads``); ``on_start``: awaited once the
    token is held, before the thread starts.  ``halts``: while it runs,
    this list holds a call that any thread may make to stop it (the caller
    must then be cancelled: the `JobStopped` that ends the function is
    raised here again otherwise)."""
    async with limiter if limiter is not None else contextlib.nullcontext():
        if on_start is not None:
            await on_start()
        return await _run(fn, halts)


async def _run(fn: Callable[[], Any], halts: list[Callable[[], None]] | None) -> Any:
    run = _ThreadRun(fn)
    if halts is not None:
        halts.append(run.stop)
    result: list[Any] = []

    async def stopper() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            run.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stopper)
        try:
            # the token of `limiter` is what limits us: anyio's own limiter
            # (40 threads) must not make a job wait unseen
            result.append(await anyio.to_thread.run_sync(run.work, cancellable=False, limiter=_unlimited()))
        except JobStopped:
            if not run.stop_requested:  # the code raised it itself: its own error
                raise
            await anyio.lowlevel.checkpoint()  # our caller was cancelled: that is what ends us
            raise
        finally:
            tg.cancel_scope.cancel()
            if halts is not None:
                halts.remove(run.stop)
    return result[0]


_UNLIMITED: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar("distkv_code_unlimited")


def _unlimited() -> anyio.CapacityLimiter:
    """A limiter that never makes anybody wait: one per event loop (making
    one per run showed in a busy runner's profile)."""
    try:
        return _UNLIMITED.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(math.inf)
        _UNLIMITED.set(limiter)
        return limiter
