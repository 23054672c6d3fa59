"""What a runner writes into a job's state when it does not run the job:
when it is due and why (`StateNotes.note`), that it lets go of a job an
earlier life of it held (`release`), and that the job's tags keep it
from running here (`not_placed`, logged once).

Bookkeeping: a write that fails or is slow is logged, never a reason to
fence the runner (compare `RunLifecycle.save_confirmed`, for releases).
After a successful run the end's write says already what `note` would
(`_runend.due_next`), so `note` writes nothing then.
"""

import logging
import time

import anyio
from moat.util import NotGiven

from ._entry import WRITE_ERRORS, JobPath, RunnerEntry, StateEntry
from ._host import RunnerHost
from ._lifecycle import RunLifecycle

logger = logging.getLogger(__name__)

__all__ = ["StateNotes"]


class StateNotes:
    """The scheduler's writes to the states of jobs it does not run."""

    def __init__(self, root: RunnerHost, lifecycle: RunLifecycle) -> None:
        self.root = root
        self.lifecycle = lifecycle
        self._not_here: dict[JobPath, str] = {}  # why we do not run it (tags), as logged once

    def placed(self, path: JobPath) -> None:
        """The job at ``path`` is no longer kept from here by its tags."""
        self._not_here.pop(path, None)

    async def release(self, state: StateEntry, reason: str) -> None:
        state.node = None
        state.stopped = time.time()
        state.resume = True
        state.reason = reason
        try:
            await self.lifecycle.save_confirmed(state)
        except (*WRITE_ERRORS, TimeoutError) as exc:
            logger.warning("%s: could not release %s (trying again): %r", self.root.node, state, exc)
            self.lifecycle.unsaved.add(state)  # or the others wait for us for good

    async def note(self, state: StateEntry, t: float | None, reason: str, always: bool = False) -> None:
        """Record when the job is due next and why (only when it changed,
        and, unless ``always``, not for jobs that never had a state)."""
        computed = t or 0
        if state.value is NotGiven and not computed and not always:
            return
        if state.node is not None or (state.computed == computed and state.reason == reason and not always):
            return
        state.computed, state.reason = computed, reason
        try:  # bookkeeping: a slow write of it is no reason to fence (save_confirmed)
            with anyio.fail_after(self.root.config.write_seconds):
                await state.save()
        except (*WRITE_ERRORS, TimeoutError) as exc:
            logger.debug("could not note the state of %s: %r", state, exc)

    async def not_placed(self, entry: RunnerEntry, state: StateEntry, reason: str) -> None:
        """A job we may not run by its tags (`Kind.NOT_HERE`): say why,
        once in the log and in its state (``placement``); let go of it if
        an earlier life of this runner held it."""
        if self._not_here.get(entry.job_path) != reason:
            self._not_here[entry.job_path] = reason
            logger.warning("%s: not running %s: %s", self.root.node, entry, reason)
        if state.node == self.root.node:
            await self.release(state, reason)
        if state.node is None and state.placement != reason:
            state.placement = reason
            await self.note(state, None, reason, always=True)
