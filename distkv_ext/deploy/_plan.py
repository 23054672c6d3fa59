"""Comparing a deploy directory with the store: the plan.

`plan_deploy` reads the store once (modules, procedures and runner
entries, each with its change chain so that the writes can be made
conditional), compares, checks what only the whole picture shows
(``requires`` naming modules that will not be there, cycles, jobs whose
procedure is missing or lacks their variables) and finds the running
jobs that the change restarts.  It writes nothing.
"""

import time
from dataclasses import dataclass, field
from typing import Optional

import anyio
from distkv.default import CFG
from moat.util import Path

from ..codekit.history import content_hash
from ..codekit.store import list_entries_with_chain
from ..codekit.textdiff import unified_diff
from ..codekit.values import same_value
from ..module._value import dotted
from ..run._ops import all_states, split_job_path

__all__ = ["Change", "Plan", "Prefixes", "plan_deploy", "job_label"]


@dataclass(frozen=True)
class Prefixes:
    """Where things are stored (DistKV's configuration: ``codes.prefix``,
    ``modules.prefix``, ``runner.prefix``, ``runner.state``)."""

    procs: Path = CFG.codes.prefix
    modules: Path = CFG.modules.prefix
    jobs: Path = CFG.runner.prefix
    states: Path = CFG.runner.state

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg["codes"]["prefix"], cfg["modules"]["prefix"], cfg["runner"]["prefix"], cfg["runner"]["state"])


def job_label(path, where):
    kind, group, node = where
    place = f"at {node} {group}" if kind == "single" else f"{kind} {group}"
    return f"{path} ({place})"


@dataclass
class Change:
    """One entry of the plan: ``action`` is add, change, remove or unchanged."""

    kind: str  # "module", "procedure", "job"
    path: Path
    action: str
    source: Optional[str] = None  # the file (None: not in the directory)
    old: Optional[dict] = None  # the stored value
    new: Optional[dict] = None  # the value to store
    chain: object = None  # the stored entry's chain (None: no entry)
    where: tuple = ()  # jobs: (kind, group, node)
    diff: str = ""

    @property
    def label(self):
        return f"job {job_label(self.path, self.where)}" if self.kind == "job" else f"{self.kind} {self.path}"


@dataclass
class Plan:
    """What a deploy would do.  ``problems`` non-empty: it must not run."""

    root: str
    changes: list = field(default_factory=list)
    restarts: list = field(default_factory=list)  # dicts: job, nodes, why
    problems: list = field(default_factory=list)
    prefixes: Prefixes = field(default_factory=Prefixes)

    @property
    def pending(self):
        return [c for c in self.changes if c.action != "unchanged"]

    def count(self, action):
        return sum(1 for c in self.changes if c.action == action)


async def _stored(client, prefixes):
    """{kind: {key: (value, chain)}} of the store; job keys are
    (kind, group, node, job path as a tuple)."""
    res = {"module": {}, "procedure": {}, "job": {}}

    async def walk(kind, prefix):
        async for p, v, chain in list_entries_with_chain(client, prefix):
            if kind == "job":
                parts = split_job_path(p)
                if parts is None or not isinstance(v, dict) or "code" not in v:
                    continue
                k, group, node, job = parts
                res["job"][(k, group, node, tuple(job))] = (v, chain, job)
            else:
                res[kind][Path.build(p)] = (v, chain)

    async with anyio.create_task_group() as tg:
        tg.start_soon(walk, "module", prefixes.modules)
        tg.start_soon(walk, "procedure", prefixes.procs)
        tg.start_soon(walk, "job", prefixes.jobs)
    return res


def _render(kind, value):
    """An entry as text for diffs: its settings, then its code."""
    if not isinstance(value, dict):
        return ""
    from moat.util import yformat

    if kind == "job":
        return yformat({k: str(v) if isinstance(v, Path) else v for k, v in value.items()}, compact=False)
    settings = {k: v for k, v in value.items() if k != "code" and v not in (None, [], (), {})}
    if kind == "procedure" and "is_async" not in settings:
        settings["is_async"] = value.get("is_async")
    text = yformat(settings, compact=False) if settings else ""
    return text + "---\n" + (value.get("code") or "")


def _compare(plan, kind, want, have, prune, manages):
    """Add the changes of one kind to the plan.  ``want``: {key: Item},
    ``have``: {key: (value, chain, ...)}."""
    for key, item in want.items():
        old = have.get(key)
        if old is None:
            ch = Change(kind, item.path, "add", item.source, None, item.value, None, item.where)
        elif same_value(old[0], item.value, keep_empty=("is_async",) if kind == "procedure" else ()):
            ch = Change(kind, item.path, "unchanged", item.source, old[0], item.value, old[1], item.where)
        else:
            ch = Change(kind, item.path, "change", item.source, old[0], item.value, old[1], item.where)
        plan.changes.append(ch)
    if prune and kind in manages:
        for key, old in have.items():
            if key not in want:
                path = old[2] if kind == "job" else key
                where = key[:3] if kind == "job" else ()
                plan.changes.append(Change(kind, path, "remove", None, old[0], None, old[1], where))


def _resolve_jobs(tree, stored, final_procs, pin_all, now):
    """Jobs of the directory with ``target: now`` and pins worked out."""
    want = {}
    for key, item in tree.jobs.items():
        value = dict(item.value)
        old = stored["job"].get(key)
        if item.target_now:
            kept = old[0].get("target") if old is not None else None
            value["target"] = kept if kept else now  # now: start it, unless already started
        if item.pin or pin_all:
            proc = final_procs.get(Path.build(value["code"]))
            if proc is not None:
                value["pin"] = content_hash(proc)
        item.value = value
        want[key] = item
    return want


async def plan_deploy(client, tree, *, prune=False, pin=False, prefixes=None, now=None):
    """Compare the `Tree` ``tree`` with the store; return a `Plan`.

    ``prune``: entries of the kinds the directory manages that it does not
    have are removed.  ``pin``: every job pins its procedure's content hash
    (a job can ask for that itself with ``pin: true``).  Nothing is written.
    """
    prefixes = prefixes or Prefixes()
    now = time.time() if now is None else now
    stored = await _stored(client, prefixes)
    plan = Plan(root=tree.root, problems=list(tree.problems), prefixes=prefixes)
    _compare(plan, "module", tree.modules, stored["module"], prune, tree.manages)
    _compare(plan, "procedure", tree.procs, stored["procedure"], prune, tree.manages)

    removed = {(c.kind, c.path) for c in plan.changes if c.action == "remove"}
    final_mods = {dotted(p): v for p, (v, _) in stored["module"].items() if ("module", p) not in removed}
    final_mods.update({dotted(p): i.value for p, i in tree.modules.items()})
    final_procs = {p: v for p, (v, _) in stored["procedure"].items() if ("procedure", p) not in removed}
    final_procs.update({p: i.value for p, i in tree.procs.items()})

    want_jobs = _resolve_jobs(tree, stored, final_procs, pin, now)
    _compare(plan, "job", want_jobs, stored["job"], prune, tree.manages)

    from ._check import check_final, restarts

    plan.problems += check_final(plan, tree, stored, final_mods, final_procs, removed)
    for ch in plan.changes:
        if ch.action == "change":
            ch.diff = unified_diff(_render(ch.kind, ch.old), _render(ch.kind, ch.new), f"stored: {ch.label}", ch.source)
    if plan.pending:  # only then can a running job be affected
        states = await all_states(client, prefix=prefixes.states)
        plan.restarts = restarts(plan, stored["job"], states, final_mods, final_procs)
    return plan

