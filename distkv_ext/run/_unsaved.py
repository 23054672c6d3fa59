"""State writes that failed and must still reach the store: `Unsaved`.

When a run's end, or a runner letting go of a job (`_notes.release`),
cannot be written (the server did not confirm it in time, the connection
broke), the runner knows something the store does not: its mirror reads
the fields it set (`StateEntry.unsaved`), so it sees the job as free and
does not write again, while every other runner reads the store, sees the
job held by a live runner, and waits.  Nothing would write that state
again: the job would never run anywhere.

`Unsaved` keeps such states and writes them again every ``interval``
seconds until a write is confirmed, a value comes from the store (it
replaces ours: another node took the job over, or our write got through
after all) or a new run of the job here writes the state itself.

A claim whose write failed is the other case: that run never held the
job, and what it set is dropped at once (`StateEntry.drop_unsaved`).
"""

import logging
import time
from collections.abc import Callable

import anyio

from ._entry import WRITE_ERRORS, JobPath, StateEntry

logger = logging.getLogger(__name__)

__all__ = ["Unsaved"]


class Unsaved:
    """States to write again (see the module doc).

    ``interval``: seconds between tries, and how long one write may take;
    ``running(path)``: is a run of that job under way here (it writes
    the state itself)?  `run` writes them until cancelled.
    """

    def __init__(self, node: str, interval: float, running: Callable[[JobPath], bool]) -> None:
        self.node = node
        self.interval = interval
        self._running = running
        self._states: dict[JobPath, StateEntry] = {}
        self._tries: dict[JobPath, int] = {}
        self._added: anyio.Event | None = None  # `run` waits for it while there are none

    def add(self, state: StateEntry) -> None:
        """Write ``state`` again later (its last write failed)."""
        self._states[state.job_path] = state
        if self._added is not None:
            self._added.set()

    def __len__(self) -> int:
        return len(self._states)

    async def run(self) -> None:
        """Write the states again, every ``interval`` seconds while there
        are any, until cancelled."""
        while True:
            if not self._states:
                self._added = anyio.Event()
                await self._added.wait()
            await anyio.sleep(self.interval)
            await self.retry()

    async def retry(self) -> None:
        """One try of each state (see the module doc)."""
        for path, state in list(self._states.items()):
            if not state.unsaved or self._running(path):
                self._forget(path)  # a value came from the store, or a run here writes it
                continue
            tries = self._tries[path] = self._tries.get(path, 0) + 1
            t0 = time.monotonic()
            try:
                await state.save(limit=self.interval)
            except (*WRITE_ERRORS, TimeoutError) as exc:
                level = logging.WARNING if tries in (1, 10) else logging.DEBUG
                logger.log(level, "%s: the state of %s is still not written (try %d): %r", self.node, state, tries, exc)
                continue
            logger.info(
                "%s: wrote the state of %s at the %d. try (%.2f s)", self.node, state, tries, time.monotonic() - t0
            )
            self._forget(path)

    def _forget(self, path: JobPath) -> None:
        self._states.pop(path, None)
        self._tries.pop(path, None)
