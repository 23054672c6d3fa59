"""Deciding which jobs run here, starting, claiming, fencing and stopping them.

One `Scheduler` per runner root.  Its loop wakes on any change (entries,
states, group membership, code) or when a job is due, and starts every due
job this node is responsible for, all at once (no gap between starts).
A change names the jobs it concerns and only those are looked at again
(plus those whose owner the change moved): with a thousand jobs, a state
written by another runner costs one job's worth of work, not a thousand.
Every job is looked at anyway every ``FULL_PASS`` seconds.

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

import heapq
import itertools
import logging
import math
import time

import anyio
from distkv.exceptions import DistKVError
from moat.util import NotGiven

from distkv_ext.codekit.core.depgraph import closure, static_imports

from ._assign import assign
from ._entry import next_start
from ._lifecycle import RunLifecycle, Running

logger = logging.getLogger(__name__)

__all__ = ["Scheduler"]

#: seconds: every job is looked at at least this often, whatever the
#: triggers said (they name the jobs that changed; this is the safety net)
FULL_PASS = 10.0


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
        # which jobs the next pass looks at (see `_pass`)
        self._full = True  # all of them
        self._next_full = 0.0
        self._dirty = set()  # job paths that changed
        self._due = []  # heap of (time, n, job path): look again then
        self._due_at = {}  # job path -> its time in _due
        self._seq = itertools.count()
        # the input of the assignment, kept up to date by the triggers
        self._stale = True  # compute the assignment again
        self._names = {}  # job path -> name, of every runner entry
        self._paths = {}  # job name -> path
        self._held = set()  # job paths whose state may name a node

    # --- triggers ---

    def trigger(self, path=None):
        """Wake the loop to look at the job at ``path`` (a tuple) or, with
        None, at every job."""
        if path is None:
            self._full = True
        else:
            self._dirty.add(path)
        self._trigger.set()

    def group_changed(self):
        group = self.root.group
        evt, members = group.state_event(), getattr(group, "changes", None)
        for run in list(self.jobs.values()):
            if run.ctx is not None:
                run.ctx.send_event(evt)
                if members is not None:
                    run.ctx.send_event(members)
        self._stale = True
        self.trigger()

    def entry_changed(self, entry):
        path = entry.job_path
        if entry.value is NotGiven:
            if self._names.pop(path, None) is not None:
                self._paths.pop(entry.job_name, None)
                self._stale = True
        elif path not in self._names:
            self._names[path] = entry.job_name
            self._paths[entry.job_name] = path
            self._stale = True
        run = self.jobs.get(path)
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
        self.trigger(path)

    def state_changed(self, state, old_node):
        path = state.job_path
        if state.node is not None:
            self._held.add(path)
        if state.node != old_node:
            self._stale = True
        run = self.jobs.get(path)
        me = self.root.node
        if run is not None and run.claimed and state.node not in (None, me):
            logger.warning("%s: %s was taken over by %s: stopping it here", me, run.entry, state.node)
            run.fenced = True
            run.stop(f"taken over by {state.node}")
        self.trigger(path)

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
                for entry in self._pass(now):
                    try:
                        t = await self._consider(entry, now)
                    except (TypeError, ValueError, AttributeError) as exc:
                        # a runner entry written behind our back with bad
                        # field types: report it, keep running the others
                        await self._bad_entry(entry, exc)
                        continue
                    if t is not None and t > now:
                        self._look_at(entry.job_path, t)
                t_next = min(self._next_full, self._due[0][0] if self._due else math.inf)
                with anyio.move_on_after(max(0.005, t_next - time.time())):
                    await self._trigger.wait()

    def _pass(self, now):
        """The runner entries to look at now: those that changed, are due
        or changed owner; every one on a full pass."""
        root = self.root
        if self._full or now >= self._next_full:
            self._full = False
            self._next_full = now + FULL_PASS
            self._dirty.clear()
            self._due.clear()
            self._due_at.clear()
            entries = list(root.all_children)
            self._names = {e.job_path: e.job_name for e in entries}
            self._paths = {n: p for p, n in self._names.items()}
            states = (root.state_for(p, create=False) for p in self._names)
            self._held = {st.job_path for st in states if st is not None and st.node is not None}
            self._reassign()
            return entries
        paths, self._dirty = self._dirty, set()
        while self._due and self._due[0][0] <= now:
            t, _, path = heapq.heappop(self._due)
            if self._due_at.get(path) == t:
                del self._due_at[path]
                paths.add(path)
        if self._stale:
            paths |= self._reassign()
        entries = (root.follow(p, create=False) for p in paths)
        return [e for e in entries if e is not None and e.value is not NotGiven]

    def _look_at(self, path, t):
        """Look at the job at ``path`` again at time ``t``."""
        if self._due_at.get(path) != t:
            self._due_at[path] = t
            heapq.heappush(self._due, (t, next(self._seq), path))

    async def _bad_entry(self, entry, exc):
        key = entry.job_path
        if self._bad.get(key) == entry.value:
            return  # reported already
        self._bad[key] = entry.value
        logger.error("%s: runner entry %s is unusable: %r", self.root.node, entry, exc)
        await self.root.record_job_error(entry, message=f"unusable runner entry: {exc}", exc=exc)

    def _reassign(self):
        """Compute who runs which any-node job (see `_assign.assign`);
        return the paths of the jobs whose owner that changed."""
        self._stale = False
        root = self.root
        if root.KIND != "any" or root.group is None:
            return set()
        group = root.group
        current = {}
        for path in list(self._held):
            node = getattr(self.root.state_for(path, create=False), "node", None)
            if node is None:
                self._held.discard(path)
            elif path in self._names and group.is_live(node):
                current[self._names[path]] = node
        for path in self.jobs:
            if path in self._names:
                current[self._names[path]] = root.node
        old, self._assignment = self._assignment, assign(self._paths, group.live(), current)
        return {self._paths[n] for n, node in self._assignment.items() if old.get(n) != node}

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
        own = self._assignment.get(entry.job_name)
        if own != root.node:
            return False, f"assigned to {own}"
        return True, ""

    async def _consider(self, entry, now):
        run = self.jobs.get(entry.job_path)
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
        own = self._assignment.get(entry.job_name, root.node)
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
        self.jobs[entry.job_path] = run
        self._by_key[entry.job_name] = run
        self._stale = True
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
