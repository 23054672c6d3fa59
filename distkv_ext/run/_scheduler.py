"""Deciding which jobs run here, starting them, and stopping those that must go.

One `Scheduler` per runner root.  Its loop wakes on any change (entries,
states, group membership, code) or when a job is due, and starts every due
job this node is responsible for, all at once (no gap between starts).
A change names the jobs it concerns and only those are looked at again
(plus those whose owner the change moved), so a state written by another
runner costs one job's work, not a thousand (the safety net, a full pass
over all, is spaced by its cost: `_agenda`).  Who runs which shared job
(`_assign`) is computed from all of them, at most every few times its
own cost (`_REASSIGN_SHARE`); a job that starts on the node it is
assigned to changes none; a job its owner does not start: `_ownerwatch`.

What to do with a job is a `Decision` (`_decision.decide`, the same
verdict ``run why`` gives); what differs between any-node, all-node and
single-node runners is the root's `RunnerPolicy`.  Jobs shared by a group
(any-node): the owner of each job is computed from the live members
(`_assign`); before starting a job the owner claims it (`_lifecycle`), and
a node that is cut off from the group (its heartbeats stop coming back)
stops its shared jobs before the others, which wait ``timeout``, take
them over.

A start at a known time (calendar slot, repeat, retry, target) is claimed
ahead by the claim's settle time and a write (`RunLifecycle.claim_lead`); its
code then waits for it, so it starts on time (bench/cron.py) and a repeating
job does not drift.  A start due while it runs here: `_overlap`.
"""

import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from moat.util import NotGiven

from ._agenda import Agenda
from ._assign import assign
from ._calendar import is_calendar
from ._claim import Claim
from ._decision import Kind, decide, decide_running
from ._entry import JobPath, RunnerEntry, StateEntry
from ._fence import fence_outside_loop
from ._host import RunnerHost
from ._index import JobIndex
from ._layout import entry_problem
from ._lifecycle import RunLifecycle
from ._notes import StateNotes
from ._outbox import MsgType
from ._overlap import mind_overlap
from ._ownerwatch import OwnerWatch
from ._placement import allowed_nodes, has_tags
from ._running import Running
from ._view import SchedulerView

logger = logging.getLogger(__name__)

__all__ = ["Scheduler"]

#: the assignment is computed again at most every this many times what
#: computing it took the last time (it takes ~10 ms per 1000 jobs): it
#: uses at most about a fifth of the runner's time while states change
_REASSIGN_SHARE = 4.0
#: a pass over many jobs lets the other tasks run after this many: at
#: 10,000 jobs a full pass held the event loop for a second, and DistKV's
#: client drops its connection when a stream's reader waits that long
_YIELD_EVERY = 200


class Scheduler:
    """Starts and stops the jobs of one runner root (see the module doc)."""

    def __init__(self, root: RunnerHost) -> None:
        self.root = root
        self.index = JobIndex()
        self.agenda = Agenda()
        self.view = SchedulerView(self)
        self.lifecycle = RunLifecycle(root, self.index, ended=self._ended)
        self.notes = StateNotes(root, self.lifecycle)
        self.owners = OwnerWatch(root.node, root.config.timeout)  # do the owners start their jobs?
        self.stopping = False
        #: job name -> the node that should run it (jobs shared by the group)
        self.assignment: dict[str, str | None] = {}
        self._stale = True  # compute the assignment again
        self._reassign_after = 0.0  # not before this time (see _REASSIGN_SHARE)
        self._bad: dict[JobPath, Any] = {}  # path -> the unusable entry value we reported
        self._checked: dict[JobPath, Any] = {}  # path -> the entry value found usable (the very object)
        self._tagged: set[JobPath] = set()  # entries that require or prefer tags (`_placement`)
        self._trigger = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def jobs(self) -> Mapping[JobPath, Running]:
        """Path -> `Running`, of every job running (or being claimed) here."""
        return self.index.runs

    # --- triggers ---

    def trigger(self, path: JobPath | None = None) -> None:
        """Wake the loop to look at the job at ``path`` (None: every job)."""
        if path is None:
            self.agenda.everything()
        else:
            self.agenda.changed(path)
        self._trigger.set()

    def group_changed(self) -> None:
        """The group's members or connectivity changed: tell the running
        jobs (``_info``), compute the assignment again."""
        group = self.root.group
        if group is not None and self.root.policy.jobs_hear_group:
            evt, members = group.state_event(), group.changes
            for run in list(self.index.runs.values()):
                if run.ctx is not None:
                    run.ctx.send_event(evt)
                    run.ctx.send_event(members)
        self._stale = True
        self._reassign_after = 0.0  # a member came or went: at once, whatever it costs
        self.trigger()

    def entry_changed(self, entry: RunnerEntry) -> None:
        """A runner entry changed: stop its run if the change requires it."""
        path = entry.job_path
        if entry.value is NotGiven:
            self._checked.pop(path, None)
            if self.index.remove_entry(path):
                self._stale = True
        elif self.index.add_entry(path, entry.job_name):
            self._stale = True
        if has_tags(entry.value):  # where it may run may have changed
            self._tagged.add(path)
            self._stale = True
        elif path in self._tagged:
            self._tagged.discard(path)
            self._stale = True
        run = self.index.run_at(path)
        if run is None and entry.value is NotGiven and self._tg is not None:
            self._tg.start_soon(self.lifecycle.forget, entry)  # nothing of a deleted job stays
        if run is not None:
            old = run.started_value
            if entry.value is NotGiven:
                run.stop("entry deleted", delete_state=True)
            elif not isinstance(entry.value, dict) or any(
                old.get(k) != entry.value.get(k) for k in ("code", "data", "pin", "require_tags")
            ):
                run.stop("entry changed", restart=True)
            elif not entry.target and not is_calendar(entry):
                run.stop("target cleared")
        self.trigger(path)

    def state_changed(self, state: StateEntry, old_node: str | None) -> None:
        """A state entry changed: a run here whose state now names another
        node is fenced."""
        path = state.job_path
        if state.node is not None:
            self.index.held.add(path)
        if state.node != old_node and self._moves(path, state.node, old_node):
            self._stale = True
        run = self.index.run_at(path)
        me = self.root.node
        if run is not None and run.claim.holds_state and state.node not in (None, me):
            logger.warning("%s: %s was taken over by %s: stopping it here", me, run.entry, state.node)
            run.fence(f"taken over by {state.node}")
        self.trigger(path)

    def _moves(self, path: JobPath, node: str | None, old_node: str | None) -> bool:
        """Does a job's holder changing from ``old_node`` to ``node`` call
        for a new assignment?  Not when it starts or ends on the node it is
        assigned to: the assignment stays valid (it counted the job there),
        and with thousands of jobs a minute each start and end would
        otherwise cost a whole assignment."""
        mine = self.assignment.get(self.index.name_of(path) or "")
        return mine is None or (node or old_node) != mine

    def modules_changed(self, names: list[str]) -> None:
        """Stored modules changed: restart the jobs whose code needs them."""
        for run in list(self.index.runs.values()):
            hit = run.needs_any(names, self.root.code.modules)
            if hit is not None:
                run.stop(f"module {hit} changed", restart=True)

    def claim_message(self, msg_type: MsgType, job: str, node: str) -> None:
        """A "claim" or "held" message of another node (see `_lifecycle`)."""
        self.lifecycle.claim_message(msg_type, job, node)

    async def job_healthy(self, entry: RunnerEntry) -> None:
        """The job said it is set up (or ran ``ok_after`` seconds)."""
        await self.lifecycle.job_healthy(entry)

    # --- the loop ---

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Schedule until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.lifecycle.unsaved.run)
            task_status.started()
            while True:
                self._trigger = anyio.Event()
                now = time.time()
                meter = self.agenda.meter(now)  # what a full pass costs, without what runs in its yields
                cost, cpu = 0.0, meter()
                entries, full = self._pass(now)
                for n, entry in enumerate(entries):
                    if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                        cost += meter() - cpu
                        await anyio.lowlevel.checkpoint()  # let the readers of the store and the group run
                        cpu = meter()
                    try:
                        t = await self._consider(entry, now)
                    except (TypeError, ValueError, AttributeError) as exc:
                        # a runner entry written behind our back with bad
                        # field types: report it, keep running the others
                        await self._bad_entry(entry, exc)
                        continue
                    if t is not None and t > now:
                        self.agenda.look_at(entry.job_path, t)
                if full:
                    self.agenda.full_pass_took(now, cost + meter() - cpu)
                wake = self.agenda.next_wake()
                if self._stale:
                    wake = min(wake, self._reassign_after)
                with anyio.move_on_after(max(0.005, wake - time.time())):
                    await self._trigger.wait()

    def _pass(self, now: float) -> tuple[list[RunnerEntry], bool]:
        """The runner entries to look at now: those that changed, are due
        or changed owner; every one on a full pass (then True)."""
        root = self.root
        paths = self.agenda.take(now)
        if paths is None:
            entries = list(root.all_children)
            self.index.reset_entries((e.job_path, e.job_name) for e in entries)
            self._checked = {p: v for p, v in self._checked.items() if self.index.has_entry(p)}
            self._tagged = {e.job_path for e in entries if has_tags(e.value)}
            states = (root.state_for(p, create=False) for p in self.index.paths)
            self.index.held = {st.job_path for st in states if st is not None and st.node is not None}
            self._reassign()
            return entries, True
        if self._stale and now >= self._reassign_after:
            paths |= self._reassign()
        found = (root.follow(p, create=False) for p in paths)
        return [e for e in found if e is not None and e.value is not NotGiven], False

    async def _bad_entry(self, entry: RunnerEntry, exc: Exception | str) -> None:
        key = entry.job_path
        if key in self._bad and (self._bad[key] is entry.value or self._bad[key] == entry.value):
            return  # reported already (a value holding a nan is not equal to itself)
        self._bad[key] = entry.value
        logger.error("%s: runner entry %s is unusable: %s", self.root.node, entry, exc)
        await self.root.record_job_error(
            entry, message=f"unusable runner entry: {exc}", exc=exc if isinstance(exc, Exception) else None
        )

    def _reassign(self) -> set[JobPath]:
        """Compute who runs which shared job (see `_assign.assign`);
        return the paths of the jobs whose owner that changed."""
        self._stale = False
        root = self.root
        group = root.group
        if not root.policy.shares_jobs or group is None:
            return set()
        t0 = time.monotonic()
        try:
            return self._compute_assignment(root, group)
        finally:
            self._reassign_after = time.time() + _REASSIGN_SHARE * (time.monotonic() - t0)

    def _compute_assignment(self, root: RunnerHost, group: Any) -> set[JobPath]:
        index = self.index
        current = index.holders(lambda p: root.state_for(p, create=False), group.is_live, root.node)
        live = group.live()
        tagged = ((index.name_of(p), root.follow(p, create=False)) for p in self._tagged)
        allowed = allowed_nodes(
            ((n, e.value) for n, e in tagged if n is not None and e is not None), live, group.live_tags()
        )
        old, self.assignment = self.assignment, assign(index.names, live, current, allowed)
        return {index.names[n] for n, node in self.assignment.items() if old.get(n) != node}

    async def _consider(self, entry: RunnerEntry, now: float) -> float | None:
        """Act on one job; return when to look at it again (None: on change)."""
        run = self.index.run_at(entry.job_path)
        if run is not None:
            again = self._check_running(entry, run, now)
            if is_calendar(entry):  # a start due while it runs (overlap)
                due = await mind_overlap(entry, run, self.root.node, now, self.root.config.write_seconds)
                again = due if again is None else again if due is None else min(again, due)
            return again
        if entry.value is NotGiven:
            return None
        if self._checked.get(entry.job_path) is not entry.value:  # checked once per value
            problem = entry_problem(entry.value)
            if problem is not None:
                await self._bad_entry(entry, problem)
                return None
            self._checked[entry.job_path] = entry.value
        state = entry.state
        d = decide(entry, state, now, self.view, paused=self.root.paused(entry.job_path))
        if d.kind is Kind.NOT_HERE:
            await self.notes.not_placed(entry, state, d.reason)
            return None
        self.notes.placed(entry.job_path)
        if d.kind is Kind.RUN_HERE:
            self._start(entry, d.reason, d.slot)  # the claim records the reason (and slot)
            return d.at
        if d.kind is Kind.ASSIGNED_TO:
            if state.node == self.root.node:
                # an earlier life of this runner held it, and it belongs to
                # another node now: let go, or nobody would ever start it
                await self.notes.release(state, f"released after {self.root.node} restarted")
                return None
            again, recompute = self.owners.check(entry, state, now, d.node)
            self._stale = self._stale or recompute
            return again
        if d.kind in (Kind.BLOCKED, Kind.HELD_BY):
            return None
        placed = bool(state.placement) and state.node is None  # no longer held back by tags
        state.placement = None if placed else state.placement
        await self.notes.note(state, d.at, d.reason, always=placed)  # WAITING, NOT_SCHEDULED
        if d.kind is Kind.WAITING and d.at is not None:
            # a start at a known time: claim it ahead, so that its code starts on time (compared as the
            claim_at = d.at - self.lifecycle.claim_lead(entry)  # agenda does: a claim time a rounding error
            if claim_at <= now:  # after now was once neither started nor looked at again)
                self._start(entry, d.reason, d.slot, start_at=d.at)
            return claim_at
        return d.at

    def _check_running(self, entry: RunnerEntry, run: Running, now: float) -> float | None:
        """Stop a job running here that must go; return when to look again."""
        if run.claim.stop_requested:
            return None
        d = decide_running(entry.job_name, self.view, rebalance=self.root.config.rebalance)
        if d.kind is Kind.BLOCKED:
            run.stop(d.reason, restart=True)  # resumed by whoever holds it next
            return None
        if d.kind is not Kind.ASSIGNED_TO:
            run.moved_since = None
            return None
        if run.moved_since is None:
            run.moved_since = now
        due = run.moved_since + self.root.config.rebalance_delay
        if now >= due:
            run.stop(d.reason, restart=True)
            return None
        return due

    def _start(self, entry: RunnerEntry, reason: str, slot: float | None = None, start_at: float | None = None) -> None:
        if self._tg is None:
            raise RuntimeError("the scheduler is not running")
        entry.state.placement = None  # the run's first write says it is placed
        # from now on a competing claim counts, even before the run's task runs
        run = Running(entry, Claim(over_channel=self.root.policy.claims), on_stop=self._stop_requested)
        run.slot, run.start_at = slot, start_at
        self.index.add_run(run)
        if self._moves(entry.job_path, self.root.node, None):
            self._stale = True
        self._tg.start_soon(self.lifecycle.run, entry, run, reason)

    def _stop_requested(self, run: Running) -> None:
        if self._tg is not None:
            self._tg.start_soon(self.lifecycle.mind_the_stop, run)

    def _ended(self, run: Running) -> None:
        """A run is over (called by the run itself)."""
        self.index.remove_run(run)
        if self._moves(run.entry.job_path, None, self.root.node):
            self._stale = True  # the jobs held here changed
        self.trigger(run.entry.job_path)

    # --- stopping ---

    async def stop_all(self, reason: str) -> None:
        """Stop every job and wait for them (bounded by ``stop_timeout``)."""
        self.stopping = True
        runs = list(self.index.runs.values())
        for run in runs:
            run.stop(reason, restart=True)  # another node (or our next life) resumes it
        with anyio.move_on_after(self.root.config.stop_timeout):
            for run in runs:
                await run.done.wait()

    def fence_from_thread(self, token: Any, reason: str) -> None:
        """The event loop is stuck (`_loopwatch`, called in its thread):
        stop the code of every run here that runs outside the loop, and
        fence the run once the loop moves again (`_fence.fence_outside_loop`)."""
        fence_outside_loop(self.index.runs, token, reason)

    # --- for tests ---

    def check_consistency(self) -> None:
        """Raise AssertionError if the scheduler's caches disagree: the
        index (entries and runs, by path and by name), the agenda, the
        jobs that may be held elsewhere, and the assignment."""
        root, index = self.root, self.index
        index.check(lambda p: root.state_for(p, create=False), root.node)
        self.agenda.check()
        if root.policy.shares_jobs and root.group is not None and not self._stale:
            assert set(self.assignment) == set(index.names), "the assignment is not of the known jobs"
