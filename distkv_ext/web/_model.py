"""What the status page knows: `StatusModel`, fed by the store's watches.

One model per server, shared by every browser.  The `Tree` mirrors
(`_live`) call its ``on_*`` methods for each change; the model files the
value and notes *what* changed with a version number, so that each
browser's event stream sends only the jobs and sections changed since it
last looked (`changes_since`), and wakes every stream at once
(`wait_change`).

It also counts what it sees happen (runs started and failed, jobs moved
from a node that was gone, claim latency): the page's metrics.
"""

import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import anyio
from moat.util import NotGiven, Path

from distkv_ext.run import CLAIM_BUCKETS, pause_of, pauses_by_group, runner_subpath

__all__ = ["JobRef", "StatusModel", "SECTIONS", "parse_state_path"]

#: The parts of the page besides the jobs table that change on their own.
SECTIONS = ("members", "errors", "procs")

#: Kept per run of a job's output: the last lines (the rest stays in the store).
TAIL_LINES = 50

#: Versions of deleted jobs are remembered this long (in versions);
#: a browser further behind reloads the page.
HORIZON = 10000


class JobRef(NamedTuple):
    """A job: its kind ("any", "all", "single"), group, node (single-node
    jobs: the NODE; else None) and path below the group (a tuple)."""

    kind: str
    group: Any
    node: Any
    path: tuple[Any, ...]


def parse_state_path(p: tuple[Any, ...]) -> tuple[JobRef, Any] | None:
    """A path below the state (or output) prefix -> (job, member); the
    member is the node of an all-node job's state, else None."""
    if len(p) >= 3 and p[0] == "any":
        return JobRef("any", p[1], None, tuple(p[2:])), None
    if len(p) >= 4 and p[0] == "all":
        return JobRef("all", p[1], None, tuple(p[3:])), p[2]
    if len(p) >= 4 and p[0] == "at":
        return JobRef("single", p[2], p[1], tuple(p[3:])), None
    return None


def _split_job(p: tuple[Any, ...]) -> JobRef | None:
    if len(p) >= 3 and p[0] in ("any", "all"):
        return JobRef(p[0], p[1], None, tuple(p[2:]))
    if len(p) >= 4 and p[0] == "at":
        return JobRef("single", p[2], p[1], tuple(p[3:]))
    return None


def shrink_output(path: tuple[Any, ...], value: Any) -> Any:
    """An output record cut to its last `TAIL_LINES` lines."""
    if isinstance(value, dict) and isinstance(value.get("lines"), (list, tuple)):
        lines = value["lines"]
        if len(lines) > TAIL_LINES:
            value = dict(value, lines=list(lines[-TAIL_LINES:]), cut=len(lines) - TAIL_LINES)
    return value


def _num(v: Any) -> float:
    try:
        return float(v or 0)
    except (TypeError, ValueError):
        return 0.0


class StatusModel:
    """Jobs, states, outputs, errors, procedures and their history, as
    the watches report them; see the module doc.  ``groups``: show only
    these (empty: all)."""

    def __init__(self, groups: Iterable[str] = ()) -> None:
        self.groups = frozenset(str(g) for g in groups)
        #: where runner entries live (set by `_live`): error records name them
        self.run_prefix: tuple[Any, ...] = (".distkv", "run")
        #: (kind, group, node) -> its `GroupObserver` (set by `_live`)
        self.observers: dict[tuple[str, Any, Any], Any] = {}
        self.jobs: dict[JobRef, Any] = {}  # runner entry values
        self.states: dict[JobRef, dict[Any, Any]] = {}  # member (None: the job's) -> state value
        self.outputs: dict[JobRef, dict[tuple[Any, int], Any]] = {}  # (member, run) -> output record
        self.errors: dict[tuple[Any, ...], Any] = {}  # (node, tock) -> error record
        self.details: dict[tuple[Any, ...], dict[Any, Any]] = {}  # (node, tock) -> {node: detail}
        self.procs: dict[tuple[Any, ...], Any] = {}
        self.history: dict[tuple[Any, ...], dict[int, Any]] = {}
        self.pauses: dict[tuple[Any, ...], Any] = {}  # path below the pause prefix -> stored value
        self.version = 0
        self.job_versions: dict[JobRef, int] = {}
        self.section_versions: dict[str, int] = dict.fromkeys(SECTIONS, 0)
        self.horizon = 0  # versions before this are forgotten (deleted jobs)
        self._changed = anyio.Event()
        self.loaded = False
        # what it saw happen (the page's metrics), by (kind, group)
        self.starts: dict[tuple[str, str], int] = {}
        self.failures: dict[tuple[str, str], int] = {}
        self.failovers: dict[tuple[str, str], int] = {}
        # claim latency: (kind, group) -> [count per bucket of CLAIM_BUCKETS (+inf last), sum]
        self.claim_latency: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        self._claims: dict[tuple[str, str, str], tuple[str, float]] = {}  # (kind, group, job) -> (node, when)
        #: called with a group name when a group is seen for the first time
        self.on_new_group: Any = None
        self.seen_groups: set[tuple[str, Any, Any]] = set()  # (kind, group, node)

    # --- what is shown ---

    def shows(self, ref: JobRef) -> bool:
        """Is this job's group shown?"""
        return not self.groups or str(ref.group) in self.groups

    def shows_error(self, record: Any) -> bool:
        """Is this error shown: every error with all groups, else the
        errors of the jobs of the groups shown."""
        if not self.groups:
            return True
        ref = self.error_job(record)
        return ref is not None and self.shows(ref)

    def error_job(self, record: Any) -> JobRef | None:
        """The job an error record is about (runner errors: their path is
        the runner entry's), or None."""
        path = record.get("path") if isinstance(record, dict) else None
        if not isinstance(path, (list, tuple, Path)):
            return None
        p, pre = tuple(path), self.run_prefix
        if p[: len(pre)] != pre:
            return None
        return _split_job(p[len(pre) :])

    # --- change tracking ---

    def _bump(self) -> int:
        self.version += 1
        self._changed.set()
        self._changed = anyio.Event()
        return self.version

    def job_changed(self, ref: JobRef) -> None:
        """Note that ``ref`` changed (its rows are sent again)."""
        if self.shows(ref):
            self.job_versions[ref] = self._bump()

    def section_changed(self, name: str) -> None:
        """Note that the section ``name`` (`SECTIONS`) changed."""
        self.section_versions[name] = self._bump()

    async def wait_change(self, since: int) -> None:
        """Return once the version is past ``since``."""
        while self.version <= since:
            await self._changed.wait()

    def changes_since(self, since: int) -> tuple[list[JobRef], list[str]] | None:
        """(jobs, sections) changed after version ``since``; None if that
        is too long ago (the caller loads everything again)."""
        if since < self.horizon:
            return None
        jobs = [r for r, v in self.job_versions.items() if v > since]
        sections = [s for s, v in self.section_versions.items() if v > since]
        return jobs, sections

    def _forget(self, ref: JobRef) -> None:
        """A job is gone: drop what is known of it, once nothing refers to it."""
        if ref not in self.jobs and not self.states.get(ref) and not self.outputs.get(ref):
            self.states.pop(ref, None)
            self.outputs.pop(ref, None)
            if self.version - self.horizon > 2 * HORIZON:  # forget old tombstones now and then
                self.horizon = self.version - HORIZON
                self.job_versions = {r: v for r, v in self.job_versions.items() if v >= self.horizon or r in self.jobs}

    def _new_group(self, kind: str, group: Any, node: Any = None) -> None:
        key = (kind, group, node)
        if key not in self.seen_groups:
            self.seen_groups.add(key)
            if self.on_new_group is not None and (not self.groups or str(group) in self.groups):
                self.on_new_group(kind, group, node)

    # --- fed by the watches ---

    def on_job(self, path: tuple[Any, ...], value: Any) -> None:
        """A runner entry changed (``path`` below the runner prefix)."""
        ref = _split_job(path)
        if ref is None:
            return
        if value is NotGiven or not isinstance(value, dict):
            if self.jobs.pop(ref, None) is None and value is NotGiven:
                return
            if value is not NotGiven:  # no runner entry (written behind our back): shown as such
                self.jobs[ref] = value
            self._forget(ref)
        else:
            self.jobs[ref] = value
            self._new_group(ref.kind, ref.group, ref.node)
        self.job_changed(ref)
        self.section_changed("procs")  # the procedures list their jobs

    def on_pause(self, path: tuple[Any, ...], value: Any) -> None:
        """A pause changed (``path`` below the pause prefix): the jobs at
        and below it are shown again."""
        path = tuple(path)
        if value is NotGiven or value is None:
            if self.pauses.pop(path, NotGiven) is NotGiven:
                return
        else:
            self.pauses[path] = value
        for ref in list(self.jobs):
            full = runner_subpath(ref.kind, ref.group, ref.node) + tuple(ref.path)
            if full[: len(path)] == path:
                self.job_changed(ref)

    def paused(self, ref: JobRef) -> str | None:
        """Why the job ``ref`` is paused, in words, or None."""
        if not self.pauses:
            return None
        try:
            sub = runner_subpath(ref.kind, ref.group, ref.node)
        except ValueError:
            return None
        return pause_of(pauses_by_group(self.pauses, sub), tuple(ref.path))

    def on_state(self, path: tuple[Any, ...], value: Any) -> None:
        """A state entry changed."""
        parsed = parse_state_path(path)
        if parsed is None:
            return
        ref, member = parsed
        states = self.states.setdefault(ref, {})
        old = states.get(member)
        if value is NotGiven:
            states.pop(member, None)
            self._forget(ref)
        else:
            states[member] = value
            self._count(ref, old if isinstance(old, dict) else {}, value if isinstance(value, dict) else {})
        self.job_changed(ref)
        old_node = old.get("node") if isinstance(old, dict) else None
        new_node = value.get("node") if isinstance(value, dict) else None
        if old_node != new_node:
            self.section_changed("members")  # the jobs they hold

    def on_output(self, path: tuple[Any, ...], value: Any) -> None:
        """An output record of a run changed."""
        if len(path) < 2:
            return
        parsed = parse_state_path(path[:-1])
        if parsed is None:
            return
        ref, member = parsed
        try:
            run = int(path[-1])
        except (TypeError, ValueError):
            return
        outs = self.outputs.setdefault(ref, {})
        if value is NotGiven or not isinstance(value, dict):
            outs.pop((member, run), None)
            self._forget(ref)
        else:
            outs[(member, run)] = value
        self.job_changed(ref)

    def on_error(self, path: tuple[Any, ...], value: Any) -> None:
        """A record of DistKV's error tree changed."""
        if len(path) == 2:
            if value is NotGiven:
                self.errors.pop(path, None)
                self.details.pop(path, None)
            else:
                self.errors[path] = value
        elif len(path) == 3:
            d = self.details.setdefault(path[:2], {})
            if value is NotGiven:
                d.pop(path[2], None)
            else:
                d[path[2]] = value
        else:
            return
        self.section_changed("errors")

    def on_proc(self, path: tuple[Any, ...], value: Any) -> None:
        """A procedure changed."""
        if value is NotGiven:
            self.procs.pop(path, None)
        else:
            self.procs[path] = value
        self.section_changed("procs")

    def on_history(self, path: tuple[Any, ...], value: Any) -> None:
        """A saved version of a procedure changed."""
        if not path:
            return
        try:
            n = int(path[-1])
        except (TypeError, ValueError):
            return
        h = self.history.setdefault(path[:-1], {})
        if value is NotGiven:
            h.pop(n, None)
            if not h:
                del self.history[path[:-1]]
        else:
            h[n] = value
        self.section_changed("procs")

    def members_changed(self, kind: str | None = None, group: Any = None, node: Any = None) -> None:
        """A group's live members changed (called by its observer, which
        names its group): the members, and the rows of the group's jobs
        (a job whose runner is gone is no longer shown running)."""
        self.section_changed("members")
        if kind is None:
            return
        for ref in list(self.jobs):
            if ref.kind == kind and str(ref.group) == str(group) and (kind != "single" or ref.node == node):
                self.job_changed(ref)

    def heard_of(self, ref: JobRef) -> Any:
        """What the page heard of ``ref``'s group (`GroupHeard`), or None."""
        obs = self.observers.get((ref.kind, ref.group, ref.node if ref.kind == "single" else None))
        return None if obs is None else obs.heard_now()

    # --- what it saw happen ---

    def on_claim(self, kind: str, group: Any, msg_type: str, job: str, node: str) -> None:
        """A claim message on a group channel (for the claim latency)."""
        if msg_type == "claim":
            self._claims[(kind, str(group), job)] = (node, time.monotonic())
            if len(self._claims) > 10000:
                self._claims.clear()

    def _count(self, ref: JobRef, old: dict[str, Any], new: dict[str, Any]) -> None:
        key = (ref.kind, str(ref.group))
        if not self.loaded:
            return  # the first load is history, not news
        # a new start: another value of runs or started, not a later one (each
        # node writes its own clock's time, and clocks differ)
        started = new.get("node") and (
            new.get("runs") != old.get("runs") or _num(new.get("started")) != _num(old.get("started"))
        )
        if started:
            self.starts[key] = self.starts.get(key, 0) + 1
            claim = self._claims.pop((ref.kind, str(ref.group), ".".join(str(x) for x in ref.path)), None)
            if claim is not None and claim[0] == new.get("node"):
                seconds = time.monotonic() - claim[1]
                counts, total = self.claim_latency.setdefault(key, ([0] * (len(CLAIM_BUCKETS) + 1), [0.0]))
                for i, b in enumerate((*CLAIM_BUCKETS, float("inf"))):
                    if seconds <= b:
                        counts[i] += 1
                total[0] += seconds
            if old.get("node") and old.get("node") != new.get("node"):
                self.failovers[key] = self.failovers.get(key, 0) + 1
        if (
            new.get("reason") == "failed"
            and not new.get("node")
            and _num(new.get("stopped")) != _num(old.get("stopped"))
        ):
            self.failures[key] = self.failures.get(key, 0) + 1
