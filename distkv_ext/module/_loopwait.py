"""Waiting, from a worker thread, for the event loop to fetch a module.

The import hook runs inside Python's import machinery, which holds the
lock of the module being imported.  A worker thread that imports a
stored module not fetched yet has the event loop fetch it and waits.
Were it to wait with ``anyio.from_thread.run`` (which waits for the loop
to even start the call) while the loop's own thread imports the same
module, each would wait for the other forever: the loop for the module's
lock, the thread for the loop.  `LoopWaiter` hands the fetch to the loop
without waiting for it to be taken (trio's ``run_sync_soon``) and waits
at most ``timeout`` seconds for it to end; then the import fails (and
the lock is freed) instead of hanging the runner.
"""

import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio.from_thread
import trio

__all__ = ["LoopWaiter"]

logger = logging.getLogger(__name__)


class LoopWaiter:
    """Made in the event loop's thread; `wait` is called from its worker
    threads."""

    #: seconds a worker thread waits for a fetch before its import fails
    timeout: float = 30.0

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        # the fetch runs as a task of its own: with the context of the task
        # that made us (asyncscope finds the client's scope in it)
        self._context = contextvars.copy_context()
        try:
            self._token: Any = trio.lowlevel.current_trio_token()
        except RuntimeError:  # not trio: anyio's way (no limit)
            self._token = None

    def in_loop_thread(self) -> bool:
        """Is the caller the event loop's own thread (which cannot wait)?"""
        return threading.get_ident() == self.thread

    def wait(self, fn: Callable[..., Awaitable[Any]], *args: Any, what: str = "") -> bool:
        """Run ``await fn(*args)`` in the event loop and wait for it (at
        most `timeout` seconds with trio); True if it ended in time.  Its
        errors are logged, not raised."""
        if self._token is None:
            try:
                anyio.from_thread.run(fn, *args)
            except Exception as exc:  # e.g. a thread the event loop did not start
                logger.warning("could not load %s: %r", what, exc)
                return False
            return True
        done = threading.Event()

        async def job() -> None:
            try:
                await fn(*args)
            except Exception as exc:
                logger.warning("could not load %s: %r", what, exc)
            finally:
                done.set()

        try:
            self._token.run_sync_soon(partial(trio.lowlevel.spawn_system_task, job, context=self._context.copy()))
        except trio.RunFinishedError:
            return False
        if not done.wait(self.timeout):
            logger.warning("gave up waiting %.0f s for %s (is the event loop importing it too?)", self.timeout, what)
            return False
        return True
