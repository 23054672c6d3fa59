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
from ._assign import assign
from ._entry import next_start
from ._lifecycle import RunLifecycle, Running, job_key

logger = logging.getLogger(__name__)

__all__ = ["Scheduler"]


class Scheduler(RunLifecycle):
    """Starts and stops the jobs of one runner root (see the module doc)."""

    def __init__(self, root):
        self.root = root
        self.jobs = {}  # subpath tuple -> Running
        self._trigger = anyio.Event()
        self._stopping = False
        self._tg = None
        self._assignment = {}
        self._recent = {}  # job -> (node, when) of others' recent claims
        self._by_key = {}  # job name -> Running
        self._bad = {}  # subpath -> the unusable entry value we reported

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
                    try:
                        t = await self._consider(entry, now)
                    except (TypeError, ValueError, AttributeError) as exc:
                        # a runner entry written behind our back with bad
                        # field types: report it, keep running the others
                        await self._bad_entry(entry, exc)
                        continue
                    if t is not None and now < t < t_next:
                        t_next = t
                with anyio.move_on_after(max(0.005, t_next - time.time())):
                    await self._trigger.wait()

    async def _bad_entry(self, entry, exc):
        key = tuple(entry.subpath)
        if self._bad.get(key) == entry.value:
            return  # reported already
        self._bad[key] = entry.value
        logger.error("%s: runner entry %s is unusable: %r", self.root.node, entry, exc)
        await self.root.record_job_error(entry, message=f"unusable runner entry: {exc}", exc=exc)

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
                current[job_key(e)] = node
        self._assignment = assign([job_key(e) for e in entries], live, current)

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
        own = self._assignment.get(job_key(entry))
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
        state = entry.state
        if not resp:
            if state.node == root.node and why.startswith("assigned to"):
                # an earlier life of this runner held it, and it belongs to
                # another node now: let go, or nobody would ever start it
                await self._release(state, f"released after {root.node} restarted")
            return None
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
            run.stop("cut off from the group", restart=True)  # resumed by whoever holds it next
            return None
        own = self._assignment.get(job_key(entry), root.node)
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

    async def _release(self, state, reason):
        state.node = None
        state.stopped = time.time()
        state.resume = True
        state.reason = reason
        try:
            await state.save()
        except (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            logger.debug("could not release %s: %r", state, exc)

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
        run = Running(entry)
        # from now on a competing claim counts, even before our task runs
        run.claiming = self.root.KIND == "any"
        self.jobs[tuple(entry.subpath)] = run
        self._by_key[job_key(entry)] = run
        self._tg.start_soon(self._run_job, entry, run, reason)

    # --- one run ---

    async def stop_all(self, reason):
        """Stop every job and wait for them (bounded by ``stop_timeout``)."""
        self._stopping = True
        runs = list(self.jobs.values())
        for run in runs:
            run.stop(reason, restart=True)  # another node (or our next life) resumes it
        with anyio.move_on_after(self.root.rcfg["stop_timeout"]):
            for run in runs:
                await run.done.wait()
