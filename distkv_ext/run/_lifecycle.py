"""One run of a job: claiming it, running it, recording how it ended.

The claim protocol (see `_scheduler`): a node that wants to start an
any-node job broadcasts a claim and waits ``settle`` seconds; a node that
runs the job answers "held"; of two claimers the one with the higher
rendezvous score wins.  Only the winner writes the job's state.
"""

import logging
import time

import anyio
from distkv.exceptions import DistKVError

from distkv_ext.codekit.core.errors import CodeError

from . import _output
from ._assign import score
from ._job import ErrorRecorded, JobContext, execute
from ._layout import output_path

logger = logging.getLogger(__name__)

__all__ = ["RunLifecycle", "Running"]


class Running:
    """Book-keeping of one job that runs (or is being claimed) here."""

    def __init__(self, entry):
        self.entry = entry
        self.scope = anyio.CancelScope()
        self.ctx = None
        self.claimed = False
        self.holding = False
        self.claiming = False
        self.beaten = False
        self.fenced = False
        self.stop_reason = None
        self.restart = False
        self.delete_state = False
        self.moved_since = None
        self.done = anyio.Event()
        self.code_entry = None
        v = entry.value
        self.started_value = dict(v) if isinstance(v, dict) else {}

    def stop(self, reason, *, restart=False, delete_state=False):
        """Cancel the run; ``restart``: resume it (here or elsewhere)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.restart = self.restart or restart
        self.delete_state = self.delete_state or delete_state
        self.scope.cancel()


class RunLifecycle:
    """Mixin of `Scheduler`: the claim protocol and the runs themselves.

    Expects ``self.root``, ``self.jobs``, ``self._by_key``, ``self._recent``,
    ``self._stale``, ``self.trigger(path)``.
    """

    def claim_message(self, kind, job, node):
        """A "claim" or "held" message of another node (see the module doc)."""
        me = self.root.node
        run = self._by_key.get(job)
        if run is None or run.stop_reason is not None:
            if kind == "claim":  # remember: we may want it ourselves soon
                self._recent[job] = (node, time.monotonic())
            return
        if run.claiming:
            if kind == "held" or score(job, node) > score(job, me):
                run.beaten = True
        elif run.holding and not run.fenced:
            if kind == "claim":
                self.root.group.send_claim("held", job)
            elif score(job, node) > score(job, me):
                # both run it (claims crossed unseen): the loser stops
                logger.warning("%s: %s also runs %s: stopping it here", me, node, job)
                run.fenced = True
                run.stop(f"also running on {node}")

    async def _claim(self, entry, run, reason):
        root = self.root
        state = entry.state
        if root.KIND == "any":
            run.claiming = True
            job = entry.job_name
            other = self._recent.pop(job, None)
            if other is not None and time.monotonic() - other[1] < 4 * root.rcfg["settle"]:
                if score(job, other[0]) > score(job, root.node):
                    run.beaten = True  # its claim, still settling, wins
            if len(self._recent) > 1000:
                cut = time.monotonic() - 4 * root.rcfg["settle"]
                self._recent = {k: v for k, v in self._recent.items() if v[1] > cut}
            try:
                root.group.send_claim("claim", entry.job_name)
                await anyio.sleep(root.rcfg["settle"])
            finally:
                run.claiming = False
            if run.beaten or not root.group.connected:
                logger.info("%s: %s is claimed by another node", root.node, entry)
                return False
            run.holding = True  # from now on, answer claims with "held"
        now = time.time()
        state.node = state.last_node = root.node
        state.started = state.pinged = now
        state.runs = int(state.runs or 0) + 1
        state.reason = reason
        state.computed = 0
        state.resume = False
        try:
            await state.save()
        except (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            logger.info("%s: could not claim %s: %r", root.node, entry, exc)
            return False
        run.claimed = True
        return True

    async def _run_job(self, entry, run, reason):
        root = self.root
        key = entry.job_path
        outcome = None
        try:
            with run.scope:
                if not await self._claim(entry, run, reason):
                    return
                try:
                    run.code_entry = root.code.lookup(entry.code_path)
                except (CodeError, TypeError, ValueError):  # execute() reports it
                    run.code_entry = None
                run.ctx = JobContext(root, entry)
                if root.group is not None:
                    run.ctx.send_event(root.group.state_event())
                buf, meta, keep = self._output_of(entry)
                async with anyio.create_task_group() as tg:
                    if run.code_entry is not None:
                        tg.start_soon(self._watch_code, run)
                    tg.start_soon(keep)
                    with _output.capture(buf):
                        outcome = await execute(root, entry, run.ctx, on_ok_after=True)
                    meta.update(stopped=time.time(), ok=bool(outcome.ok), error=outcome.error)
                    tg.cancel_scope.cancel()
        finally:
            if outcome is None and run.ctx is not None:
                outcome = run.ctx.returned  # the code ended before the stop took effect
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(5):
                    await self._finish(entry, run, outcome)
                self.jobs.pop(key, None)
                if self._by_key.get(entry.job_name) is run:
                    del self._by_key[entry.job_name]
                run.done.set()
                self._stale = True  # the jobs held here changed
                self.trigger(key)

    def _output_of(self, entry):
        """(buffer, metadata, keeper coroutine function) for this run's output."""
        root = self.root
        cfg = root.rcfg
        state = entry.state
        run_no = int(state.runs or 1)
        _output.install()
        buf = _output.OutputBuffer(int(cfg["output_lines"]))
        meta = {"node": root.node, "run": run_no, "started": state.started or time.time()}

        def path_of(n):
            return output_path(cfg["output"], root.state_subpath, entry.subpath, n)

        async def keep():
            try:
                await _output.keeper(root.client, path_of(run_no), buf, meta)
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(3):
                    await _output.prune(root.client, path_of, int(cfg["output_runs"]), run_no)

        return buf, meta, keep

    async def _watch_code(self, run):
        await run.code_entry.reload_event.wait()
        run.stop("code changed", restart=True)

    async def _finish(self, entry, run, outcome):
        root = self.root
        state = entry.state
        if run.fenced or not run.claimed or state.node != root.node:
            return  # someone else holds it now: their state, not ours
        if run.delete_state:
            try:
                await state.delete()
            except (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            return
        # first the awaits (error records), then change the attributes and
        # save at once: an echo arriving in between would undo the changes
        stopped = outcome is None  # interrupted, not ended by the code
        if stopped and run.stop_reason is None:  # our task was cancelled: shutdown
            run.stop_reason, run.restart = "runner stopped", True
        if not stopped and outcome is not None:
            if outcome.ok:
                await self._working(entry)
            elif not isinstance(outcome.exc, ErrorRecorded):  # that one is recorded already
                await root.record_job_error(entry, message=outcome.error, exc=outcome.exc)
        if state.node != root.node:
            return
        state.node = None
        state.stopped = time.time()
        state.resume = False
        if stopped:
            state.reason = run.stop_reason
            state.resume = run.restart
        elif outcome is not None and outcome.ok:
            state.result = outcome.result
            state.backoff = 0
            state.error = None
            state.reason = "finished"
        elif outcome is not None:
            healthy = run.ctx is not None and run.ctx.healthy
            state.backoff = 1 if healthy else int(state.backoff or 0) + 1
            state.error = outcome.error
            state.reason = "failed"
        try:
            await state.save()
        except (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            logger.warning("%s: could not save the state of %s: %r", root.node, entry, exc)

    async def _working(self, entry):
        try:
            await self.root.err.record_working("run", entry._path)
        except Exception as exc:
            logger.debug("record_working failed: %r", exc)

    async def job_healthy(self, entry):
        """The job said it is set up (or ran ``ok_after`` seconds)."""
        state = entry.state
        if state.node == self.root.node and state.backoff:
            state.backoff = 0
            state.error = None
            try:
                await state.save()
            except (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
        await self._working(entry)
