"""One run of a job: claiming it, running it, recording how it ended.

The claim protocol, for runners whose policy ``claims`` (any-node jobs):
a node that wants to start a job broadcasts a claim on the group's
channel and waits ``settle`` seconds (longer while our own heartbeats
take longer to come back: `_echolag`); a node that runs the job answers
"held"; of two claimers the one with the higher rendezvous score wins
(both compute the same).  Only the winner writes the job's state entry
(``node``: itself).  This matters because DistKV resolves two
simultaneous writes to one entry via different servers by keeping each
server's own: a conditional write alone cannot arbitrate.

While a job runs, a claim for it is answered with "held"; a "held" from a
node with a better score for a job running here, or a state entry naming
another node (`Scheduler.state_changed`), *fences* it: the run stops at
once and writes nothing.  Where each run stands is its `Claim`
(`_claim`); this module tells it what happened and asks it what to do.
"""

import logging
import time
from collections.abc import Callable

import anyio
from moat.util import NotGiven

from distkv_ext.codekit.core.errors import CodeError

from . import _metrics, _output
from ._admin import ErrorRecorded, JobContext
from ._assign import score
from ._calendar import is_calendar
from ._calplan import take_slot
from ._caps import fit_outcome
from ._claim import StopRequest
from ._decision import TAKEOVER
from ._entry import WRITE_ERRORS, RunnerEntry, StateEntry
from ._host import RunnerHost
from ._index import JobIndex
from ._job import Outcome, execute
from ._loopwatch import LoopStalled
from ._outbox import MsgType
from ._ratelog import RateLog
from ._runend import count_stall, due_next
from ._running import Running
from ._runoutput import RunOutputs
from ._schedule import claim_lead
from ._unsaved import Unsaved
from ._writelag import WriteLag

logger = logging.getLogger(__name__)

__all__ = ["RunLifecycle"]

#: forget others' claims after this many settle times
_RECENT_SETTLES = 4
#: seconds after a stop request before the state says the code has not ended
_STOP_NOTICE = 1.0
#: state writes of one runner root in flight at once (see `save_confirmed`)
WRITES_IN_FLIGHT = 16


class RunLifecycle:
    """The runs of one `Scheduler`: the claim protocol and the runs themselves.

    ``index``: the scheduler's `JobIndex` (to find the run a message
    concerns); ``ended(run)``: called when a run is over.
    """

    def __init__(self, root: RunnerHost, index: JobIndex, ended: Callable[[Running], None]) -> None:
        self.root = root
        self.index = index
        self._ended = ended
        self._recent: dict[str, tuple[str, float]] = {}  # job -> (node, when) of others' recent claims
        self._recent_cap = 1000  # prune `_recent` when it grows past this
        self._writes = anyio.CapacityLimiter(WRITES_IN_FLIGHT)
        self._confirmed_at = 0.0  # time.monotonic() of the last write `save_confirmed` saw confirmed
        self.outputs = RunOutputs(root)
        #: states whose last write failed, written again (`_unsaved`)
        self.unsaved = Unsaved(root.node, root.config.write_seconds, lambda p: index.run_at(p) is not None)
        self.write_lag = WriteLag(root.config.write_seconds)  # our claims' writes lately (`claim_lead`)
        self.claims_failed = RateLog(logger, f"{root.node}: could not claim")  # (it is looked at again)

    # --- the claim protocol ---

    def claim_message(self, msg_type: MsgType, job: str, node: str) -> None:
        """A "claim" or "held" message of another node (see the module doc)."""
        me = self.root.node
        run = self.index.run_named(job)
        if run is None or run.claim.stop_requested:
            if msg_type == "claim":  # remember: we may want it ourselves soon
                self._recent[job] = (node, time.monotonic())
            return
        claim = run.claim
        if claim.contested:
            if msg_type == "held" or score(job, node) > score(job, me):
                claim.beat()
        elif claim.answers_claims:
            group = self.root.group
            if msg_type == "claim":
                if group is not None:
                    group.send_claim("held", job)
            elif score(job, node) > score(job, me):
                # both run it (claims crossed unseen): the loser stops
                logger.warning("%s: %s also runs %s: stopping it here", me, node, job)
                run.fence(f"also running on {node}")

    async def _claim(self, entry: RunnerEntry, run: Running, reason: str) -> bool:
        """Claim the job and write its state naming us; True if we hold it."""
        root = self.root
        cfg = root.config
        claim = run.claim
        group = root.group
        t0 = time.monotonic()
        if root.policy.claims and group is not None:
            job = entry.job_name
            settle = group.claim_settle(cfg.settle)  # longer while the channel is slow
            other = self._recent.pop(job, None)
            if other is not None and time.monotonic() - other[1] < _RECENT_SETTLES * settle:
                if score(job, other[0]) > score(job, root.node):
                    claim.beat()  # its claim, still settling, wins
            if len(self._recent) > self._recent_cap:  # (each claim scanned all 10,000 when all were recent)
                cut = time.monotonic() - _RECENT_SETTLES * settle
                self._recent = {k: v for k, v in self._recent.items() if v[1] > cut}
                self._recent_cap = max(1000, 2 * len(self._recent))
            group.send_claim("claim", job)
            await anyio.sleep(settle)
            claim.settled(connected=group.connected)
            if not claim.may_write:
                logger.info("%s: %s is claimed by another node", root.node, entry)
                return False
        elif not claim.may_write:  # stopped before it began
            return False
        state = entry.state
        if (
            group is not None
            and root.policy.shares_jobs
            and state.node not in (None, root.node)
            and group.is_live(state.node)
        ):
            # its state names a live node, written while we settled (its
            # claim reached us late, or not at all): it won; we write nothing
            # (a dead node's name is a take-over, decided on before)
            logger.info("%s: %s is held by %s", root.node, entry, state.node)
            claim.fence(f"held by {state.node}")
            return False
        now = time.time()
        state.node = state.last_node = root.node
        state.started = state.pinged = now
        state.runs = int(state.runs or 0) + 1
        state.reason = reason
        state.computed = 0
        run.forced = bool(state.resume)
        state.resume = False
        if state.triggered:  # `run trigger`: one run that consumes nothing of the schedule
            state.triggered = None
        elif is_calendar(entry):
            take_slot(entry, state, run.slot, now)
        else:
            state.for_target = entry.target  # the target this run consumes (see _schedule.next_start)
        run.number = state.runs
        run.drop_outputs = self.outputs.claim(entry, run.number)
        t_write = time.monotonic()
        try:
            await self.save_confirmed(state)
        except (*WRITE_ERRORS, TimeoutError) as exc:
            self.claims_failed.add(f"{entry}: {exc!r}")
            state.drop_unsaved()  # it never held the job: what the store has stands
            claim.write_failed()
            return False
        claim.wrote()
        self.write_lag.wrote(time.monotonic() - t_write)
        labels = _metrics.labels_of(root.policy.kind, root.state_subpath)
        _metrics.claimed(*labels, time.monotonic() - t0)
        _metrics.run_started(*labels)
        if reason.startswith(TAKEOVER):
            _metrics.failover(*labels)
        return True

    def claim_lead(self, entry: RunnerEntry) -> float:
        """How long before a start at a known time to claim it
        (`_schedule.claim_lead`): the claim's settle time now, and how
        long our claims' writes take lately (`_writelag`)."""
        root, group = self.root, self.root.group
        settle = root.config.settle if group is None else group.claim_settle(root.config.settle)
        return claim_lead(entry, settle, root.policy.claims, self.write_lag.high())

    async def save_confirmed(self, state: StateEntry) -> None:
        """Save ``state``; a write the server has not confirmed within
        ``runner.write_timeout`` raises TimeoutError.  If no other write was
        confirmed while it waited (the store does not answer us, rather
        than slowly: under load, fencing on every late write cut five
        runners of 3000 jobs off every few seconds, and jobs never ran),
        the runner fences itself until the server answers again
        (`writes_unconfirmed`).

        At most `WRITES_IN_FLIGHT` such writes are sent at once, and the
        timeout counts from the sending: when a thousand jobs start
        together, the last write waits behind our own 999, which says
        nothing about the server, and our heartbeats do not queue up
        behind them."""
        limit = self.root.config.write_seconds
        try:
            await state.save(gate=self._writes, limit=limit)
        except TimeoutError:
            if time.monotonic() - self._confirmed_at >= limit:
                self.root.writes_unconfirmed(f"the state of {state} was not written within {limit:g} s")
            else:
                logger.info("%s: %s not written within %g s (others were)", self.root.node, state, limit)
            raise
        self._confirmed_at = time.monotonic()

    # --- the run ---

    async def run(self, entry: RunnerEntry, run: Running, reason: str) -> None:
        """Claim the job, run it, record how it ended; `Running.stop` ends it."""
        root = self.root
        outcome: Outcome | None = None
        meta: dict[str, object] = {}  # of its output: "stored" once written
        try:
            with run.scope:
                if not await self._claim(entry, run, reason):
                    return
                try:  # a slot of each of its limits (`_limiter`); meanwhile its state says what it waits for
                    await root.limits.acquire(entry, run, lambda text: self.job_waiting(entry, text))
                except CodeError as exc:  # its limits turned to nonsense after the scheduler checked them
                    run.claim.request_stop(f"unusable runner entry: {exc}")
                    await root.record_job_error(entry, message=f"unusable runner entry: {exc}", exc=exc)
                    return
                if run.start_at is not None:  # claimed ahead of its start
                    await anyio.sleep(max(0.0, run.start_at - time.time()))
                paused = None if run.forced else root.paused(entry.job_path)
                if paused:  # paused while it waited for its limits or its calendar second
                    run.claim.request_stop(f"not started: {paused}")
                    return
                try:
                    run.code_entry = root.code.lookup(entry.code_path)
                except (CodeError, TypeError, ValueError):  # execute() reports it
                    run.code_entry = None
                group = root.group if root.policy.jobs_hear_group else None
                run.ctx = JobContext(root, entry, () if group is None else (group.state_event(),))
                buf, meta, keep = self.outputs.start(entry)
                async with anyio.create_task_group() as tg:
                    if run.code_entry is not None:
                        tg.start_soon(self._watch_code, run)
                    tg.start_soon(keep)
                    try:
                        with _output.capture(buf):
                            outcome = fit_outcome(
                                await execute(root, entry, run.ctx, on_ok_after=True), root.config.result_bytes
                            )
                    finally:  # before the last output write (up to 3 s, shielded) of `keep`
                        run.code_ended.set()
                    if not outcome.ok:  # `run logs` and `run why` show it
                        _output.add_failure(buf, outcome.exc, outcome.error)
                    meta.update(stopped=time.time(), ok=bool(outcome.ok), error=outcome.error)
                    tg.cancel_scope.cancel()
        finally:
            run.code_ended.set()  # (stopped before its code began; the writes below are no code)
            run.output_stored = bool(meta.get("stored"))  # (cancelled or not: `keep` wrote it shielded)
            if outcome is None and run.ctx is not None and run.ctx.returned is not None:
                # the code ended before the stop took effect
                outcome = fit_outcome(run.ctx.returned, root.config.result_bytes)
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(root.config.write_seconds):
                    await root.limits.release(run)  # its code has stopped: free its slots at once
                with anyio.move_on_after(5):
                    await self._finish(entry, run, outcome)
                stop = run.claim.stop
                if run.number and not (stop is not None and stop.delete_state):  # (deleted: all went)
                    # whether or not it got as far as its code (see `RunOutputs.start`)
                    with anyio.move_on_after(3):
                        await self.outputs.prune(entry, run.drop_outputs)
                run.claim.release()
                self._ended(run)
                run.done.set()

    async def _watch_code(self, run: Running) -> None:
        await run.code_entry.reload_event.wait()
        run.stop("code changed", restart=True)

    async def _finish(self, entry: RunnerEntry, run: Running, outcome: Outcome | None) -> None:
        root = self.root
        state = entry.state
        claim = run.claim
        if not claim.holds_state or state.node != root.node:
            return  # someone else holds it now: their state, not ours
        if claim.stop is not None and claim.stop.delete_state:
            try:
                await state.delete()
            except WRITE_ERRORS:
                pass
            await self.outputs.forget(entry)  # written at the end of the run, after the others forgot it
            return
        # first the awaits (error records), then change the attributes and
        # save at once: an echo arriving in between would undo the changes
        stop: StopRequest | None = None
        if outcome is None:  # interrupted, not ended by the code
            if claim.stop is None:  # our task was cancelled: shutdown
                claim.request_stop("runner stopped", restart=True)
            stop = claim.stop
        elif outcome.ok:
            await self._working(entry)
        else:
            _metrics.run_failed(*_metrics.labels_of(root.policy.kind, root.state_subpath))
            if not isinstance(outcome.exc, ErrorRecorded):  # that one is recorded already
                await root.record_job_error(entry, message=outcome.error, exc=outcome.exc)
        if state.node != root.node:
            return
        if not run.output_stored:
            self.outputs.quiet(entry, run.number)
        state.node = None
        state.stopped = time.time()
        state.resume = False
        state.waiting = None
        if stop is not None:
            state.reason = stop.reason
            state.resume = stop.restart
        elif outcome is not None and outcome.ok:
            state.result = outcome.result
            state.backoff = 0
            state.error = None
            state.reason = "finished"
            state.stalls = []
            due_next(entry, state, root.node)
        elif outcome is not None:
            healthy = run.ctx is not None and run.ctx.healthy
            state.backoff = 1 if healthy else int(state.backoff or 0) + 1
            state.error = outcome.error
            state.reason = "failed"
            if isinstance(outcome.exc, LoopStalled):
                count_stall(state, root.node, root.config.quarantine_after)
        try:
            await self.save_confirmed(state)
        except (*WRITE_ERRORS, TimeoutError) as exc:
            logger.warning("%s: could not save the state of %s (trying again): %r", root.node, entry, exc)
            self.unsaved.add(state)  # or the store says it runs here, and no node starts it again

    async def forget(self, entry: RunnerEntry) -> None:
        """``entry`` was deleted and does not run here: delete its state
        (unless a node holds it: that one deletes it when its run ends)
        and the output of its runs, and resolve its error record, so that
        nothing of a deleted job stays in the store.  Every runner that
        sees the deletion does this; a second delete changes nothing."""
        root = self.root
        state = entry.state
        with anyio.move_on_after(max(root.config.timeout, 5)):
            if state.value is not NotGiven and not state.node:
                try:
                    await state.delete()
                except WRITE_ERRORS as exc:
                    logger.debug("%s: state of deleted %s: %r", root.node, entry, exc)
            await self.outputs.forget(entry)
            await self._working(entry)

    async def _working(self, entry: RunnerEntry) -> None:
        try:
            await self.root.err.record_working("run", entry._path)
        except Exception as exc:
            logger.debug("record_working failed: %r", exc)

    async def mind_the_stop(self, run: Running) -> None:
        """A stop of ``run`` was requested: if its code has not ended a
        second later (a thread or child that ignores its stop), its state
        says so; the claim stays here until the code has ended.  Ended
        code whose end's writes are slow (a busy server) writes no notice."""
        with anyio.move_on_after(_STOP_NOTICE):
            await run.code_ended.wait()
            return
        stop = run.claim.stop
        why = f" ({stop.reason})" if stop is not None else ""
        await self.job_waiting(run.entry, f"stopping{why}: its code has not ended yet")

    async def job_waiting(self, entry: RunnerEntry, reason: str | None) -> None:
        """The job holds its claim but its code waits (for a worker
        thread): its state says so (``waiting``; None: it runs now)."""
        state = entry.state
        if state.node != self.root.node or state.waiting == reason:
            return
        state.waiting = reason
        with anyio.move_on_after(self.root.config.write_seconds):
            try:
                await state.save()
            except WRITE_ERRORS as exc:
                logger.debug("could not note that %s waits: %r", entry, exc)

    async def job_healthy(self, entry: RunnerEntry) -> None:
        """The job said it is set up (or ran ``ok_after`` seconds): reset
        its error count and its stalls, resolve its error."""
        state = entry.state
        if state.node == self.root.node and (state.backoff or state.stalls):
            state.backoff = 0
            state.error = None
            state.stalls = []
            try:
                await state.save()
            except WRITE_ERRORS:
                pass
        await self._working(entry)
