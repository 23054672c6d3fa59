"""Deciding which jobs run here, starting, claiming, fencing and stopping them.

One `Scheduler` per runner root.  Its loop wakes on any change (entries,
states, group membership, code) or when the next job is due, and starts
every due job this node is responsible for, all at once (no gap between
starts).

Any-node jobs: the owner is computed from the live members (`_assign`).
Before it starts a job, the owner *claims* it on the group's message
channel and waits ``settle`` seconds: a node that runs the job answers
"held", and of two nodes that claim at once the one with the higher
rendezvous score wins (both compute the same).  Only the winner writes
the job's state entry (``node``: itself).  This matters because DistKV
resolves two simultaneous writes to one entry via different servers by
keeping each server's own: a conditional write alone cannot arbitrate.

While a job runs, a claim for it is answered with "held"; a "held" from
another node for a job running here, or a state entry naming another
node, *fences* it: the loser of the tie-break cancels its run at once.
A node that is cut off from the group (its heartbeats stop coming back)
stops its any-node jobs before the others, which wait ``timeout``, take
them over.
"""

import logging
import time

import anyio
from distkv.exceptions import DistKVError
from moat.util import NotGiven

from ..codekit.depgraph import closure, static_imports
from ..codekit.errors import CodeError
from ._assign import assign, score
from ._entry import next_start
from ._job import ErrorRecorded, JobContext, execute

logger = logging.getLogger(__name__)

__all__ = ["Scheduler"]


class _Running:
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
        if self.stop_reason is None:
            self.stop_reason = reason
        self.restart = self.restart or restart
        self.delete_state = self.delete_state or delete_state
        self.scope.cancel()


def _key(entry):
    return ".".join(str(x) for x in entry.subpath)


class Scheduler:
    """Starts and stops the jobs of one runner root (see the module doc)."""

    def __init__(self, root):
        self.root = root
        self.jobs = {}  # subpath tuple -> _Running
        self._trigger = anyio.Event()
        self._stopping = False
        self._tg = None
        self._assignment = {}
        self._recent = {}  # job -> (node, when) of others' recent claims
        self._by_key = {}  # job name -> _Running

    # --- triggers ---

    def trigger(self):
        self._trigger.set()

    def group_changed(self):
        group = self.root.group
        evt, members = group.state_event(), getattr(group, "changes", None)
        for run in list(self.jobs.values()):
            if run.ctx is not None:
                run.ctx.send_event(evt)
                if members is not None:
                    run.ctx.send_event(members)
        self.trigger()

    def entry_changed(self, entry):
        run = self.jobs.get(tuple(entry.subpath))
        if run is not None:
            old = run.started_value
            if entry.value is NotGiven:
                run.stop("entry deleted", delete_state=True)
            elif not isinstance(entry.value, dict) or any(
                old.get(k) != entry.value.get(k) for k in ("code", "data", "pin")
            ):
                run.stop("entry changed", restart=True)
            elif not entry.target:
                run.stop("target cleared")
        self.trigger()

    def state_changed(self, state, old_node):
        run = self.jobs.get(tuple(state.subpath))
        me = self.root.node
        if run is not None and run.claimed and state.node not in (None, me):
            logger.warning("%s: %s was taken over by %s: stopping it here", me, run.entry, state.node)
            run.fenced = True
            run.stop(f"taken over by {state.node}")
        self.trigger()

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

    def modules_changed(self, names):
        for run in list(self.jobs.values()):
            ce = run.code_entry
            if ce is None or ce.value is NotGiven:
                continue
            needs = set(ce.requires) | static_imports(ce.value.get("code") or "")
            mods = self.root.code.modules
            if mods is not None:
                needs = closure(mods.requires_graph(), needs) | needs
            hit = needs & set(names)
            if hit:
                run.stop(f"module {sorted(hit)[0]} changed", restart=True)

    # --- the loop ---

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED):
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            while True:
                self._trigger = anyio.Event()
                now = time.time()
                t_next = now + 30
                entries = list(self.root.all_children)
                self._assign(entries)
                for entry in entries:
                    t = await self._consider(entry, now)
                    if t is not None and now < t < t_next:
                        t_next = t
                with anyio.move_on_after(max(0.005, t_next - time.time())):
                    await self._trigger.wait()

    def _assign(self, entries):
        """Compute who runs which any-node job (see `_assign.assign`)."""
        root = self.root
        if root.KIND != "any" or root.group is None:
            return
        live = root.group.live()
        current = {}
        for e in entries:
            node = e.state.node
            if tuple(e.subpath) in self.jobs:
                node = root.node
            if node is not None and root.group.is_live(node):
                current[_key(e)] = node
        self._assignment = assign([_key(e) for e in entries], live, current)

    def responsible(self, entry):
        """(True, "") if this node should run ``entry``, else (False, why)."""
        root = self.root
        if self._stopping:
            return False, "runner stopping"
        if root.KIND != "any":
            return True, ""
        group = root.group
        if group is None or not group.ready:
            return False, "waiting to hear the group"
        if not group.connected:
            return False, "cut off from the group"
        own = self._assignment.get(_key(entry))
        if own != root.node:
            return False, f"assigned to {own}"
        return True, ""

    async def _consider(self, entry, now):
        key = tuple(entry.subpath)
        run = self.jobs.get(key)
        root = self.root
        if run is not None:
            return self._check_running(entry, run, now)
        if entry.value is NotGiven:
            return None
        resp, why = self.responsible(entry)
        if not resp:
            return None
        state = entry.state
        t, reason = next_start(entry, state, now)
        if state.node is not None:
            if state.node == root.node:  # left by an earlier life of this runner
                t, reason = now, "restarting after this runner restarted"
            elif root.KIND == "any" and not root.group.is_live(state.node):
                t, reason = now, f"taking over from {state.node}"
        if t is not None and t <= now:
            self._start(entry, reason)  # the claim records the reason
        else:
            await self._note(state, t, reason)
        return t

    def _check_running(self, entry, run, now):
        """Stop a job running here that must move; return when to look again."""
        root = self.root
        if root.KIND != "any" or self._stopping or run.stop_reason is not None:
            return None
        group = root.group
        if not group.connected:
            run.stop("cut off from the group")  # the others take it over
            return None
        own = self._assignment.get(_key(entry), root.node)
        if own == root.node or not root.rcfg["rebalance"]:
            run.moved_since = None
            return None
        if run.moved_since is None:
            run.moved_since = now
        due = run.moved_since + root.rcfg["rebalance_delay"]
        if now >= due:
            run.stop(f"moved to {own}", restart=True)
            return None
        return due

    async def _note(self, state, t, reason):
        """Record when the job is due next and why (only when it changed,
        and not for jobs that never had a state)."""
        computed = t or 0
        if state.value is NotGiven and not computed:
            return
        if state.node is not None or (state.computed == computed and state.reason == reason):
            return
        state.computed, state.reason = computed, reason
        try:
            await state.save()
        except (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            logger.debug("could not note the state of %s: %r", state, exc)

    def _start(self, entry, reason):
        run = _Running(entry)
        # from now on a competing claim counts, even before our task runs
        run.claiming = self.root.KIND == "any"
        self.jobs[tuple(entry.subpath)] = run
        self._by_key[_key(entry)] = run
        self._tg.start_soon(self._run_job, entry, run, reason)

    # --- one run ---

    async def _claim(self, entry, run, reason):
        root = self.root
        state = entry.state
        if root.KIND == "any":
            run.claiming = True
            job = _key(entry)
            other = self._recent.pop(job, None)
            if other is not None and time.monotonic() - other[1] < 4 * root.rcfg["settle"]:
                if score(job, other[0]) > score(job, root.node):
                    run.beaten = True  # its claim, still settling, wins
            if len(self._recent) > 1000:
                cut = time.monotonic() - 4 * root.rcfg["settle"]
                self._recent = {k: v for k, v in self._recent.items() if v[1] > cut}
            try:
                root.group.send_claim("claim", _key(entry))
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
        key = tuple(entry.subpath)
        outcome = None
        try:
            with run.scope:
                if not await self._claim(entry, run, reason):
                    return
                try:
                    run.code_entry = root.code.lookup(entry.code_path)
                except CodeError:
                    run.code_entry = None
                run.ctx = JobContext(root, entry)
                if root.group is not None:
                    run.ctx.send_event(root.group.state_event())
                async with anyio.create_task_group() as tg:
                    if run.code_entry is not None:
                        tg.start_soon(self._watch_code, run)
                    outcome = await execute(root, entry, run.ctx, on_ok_after=True)
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(5):
                    await self._finish(entry, run, outcome)
                self.jobs.pop(key, None)
                if self._by_key.get(_key(entry)) is run:
                    del self._by_key[_key(entry)]
                run.done.set()
                self.trigger()

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
        except Exception as exc:  # pylint: disable=broad-except
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

    async def stop_all(self, reason):
        """Stop every job and wait for them (bounded by ``stop_timeout``)."""
        self._stopping = True
        runs = list(self.jobs.values())
        for run in runs:
            run.stop(reason, restart=True)  # another node (or our next life) resumes it
        with anyio.move_on_after(self.root.rcfg["stop_timeout"]):
            for run in runs:
                await run.done.wait()
