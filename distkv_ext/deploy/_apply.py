"""Carrying out a deploy plan: conditional, concurrent writes in order.

Order: modules, procedures, runner entries are written (added and
changed); then, with ``--prune``, runner entries, procedures and modules
are removed, so that nothing ever points at what is not there yet or no
longer.  Each step's writes go out concurrently over the one connection;
each is conditional on the entry being as the plan saw it (a new entry:
that there still is none), so an edit someone made since is detected and
reported, never overwritten.  A step with such conflicts ends the deploy
before the next step starts.  Last, the tree's manifest (what it wrote,
see `._manifest`) is written, conditional too.

Before the first write every value is checked once more as DistKV will
store it (`checks.storable_problems`): a plan made by other code than
`plan_deploy` cannot half-deploy either.
"""

from dataclasses import dataclass, field

import anyio
from moat.util import Path

from distkv_ext.codekit.core.checks import storable_problems
from distkv_ext.codekit.core.errors import Conflict, InputRefused
from distkv_ext.codekit.store import history
from distkv_ext.codekit.store.entries import delete_entry, write_entry
from distkv_ext.run import runner_subpath

from ._manifest import Manifest

__all__ = ["apply_deploy", "DeployRefused", "DeployConflict", "Result", "STEPS"]

#: (kind, actions) in the order a deploy carries them out.
STEPS = (
    ("module", ("add", "change")),
    ("procedure", ("add", "change")),
    ("job", ("add", "change")),
    ("job", ("remove",)),
    ("procedure", ("remove",)),
    ("module", ("remove",)),
)

_HISTORY_KIND = {"module": "module", "procedure": "proc"}


class DeployRefused(InputRefused):
    """The directory (or the store as it would be) has problems; nothing
    was written.  ``problems``: one line each."""

    def __init__(self, root, problems):
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{root}: {n} problem{'s' if n != 1 else ''}; nothing written")


class DeployConflict(Conflict):
    """Entries changed by someone else while deploying were not
    overwritten.  ``conflicts``: their labels; ``result``: what was done."""

    def __init__(self, conflicts, result):
        self.conflicts = list(conflicts)
        self.result = result
        names = ", ".join(self.conflicts[:3]) + (" ..." if len(self.conflicts) > 3 else "")
        super().__init__(
            names,
            f"changed by someone else during the deploy, not overwritten: {names}"
            f" ({result.written} written before stopping; deploy again to see the new plan)",
        )


@dataclass
class Result:
    """What a deploy did."""

    written: int = 0
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    removed: list = field(default_factory=list)


def _prefix(plan, ch):
    p = plan.prefixes
    if ch.kind == "module":
        return p.modules
    if ch.kind == "procedure":
        return p.procs
    kind, group, node = ch.where
    return p.jobs + Path.build(runner_subpath(kind, group, node))


async def _one(client, plan, ch, result, conflicts, keep):
    prefix = _prefix(plan, ch)
    try:
        if ch.action == "remove":
            await delete_entry(client, prefix, ch.path, ch.kind, chain=ch.chain)
        else:
            await write_entry(client, prefix, ch.path, ch.new, chain=ch.chain)
    except Conflict:
        conflicts.append(ch.label)
        return
    result.written += 1
    {"add": result.added, "change": result.changed, "remove": result.removed}[ch.action].append(ch.label)
    if ch.old is not None and ch.kind in _HISTORY_KIND:
        await history.record(client, _HISTORY_KIND[ch.kind], ch.path, ch.old, keep=keep)


async def apply_deploy(client, plan, *, progress=None, concurrency=32, keep=history.DEFAULT_KEEP):
    """Carry out ``plan`` (from `plan_deploy`); return a `Result`.

    Raises `DeployRefused` (nothing written) when the plan has problems,
    `DeployConflict` when entries changed since the plan was made (they
    are not overwritten; the steps before went through).
    ``progress(done, total)`` is called after each write.  The replaced
    version of every procedure and module goes to the history (the last
    ``keep``).
    """
    if plan.problems:
        raise DeployRefused(plan.root, plan.problems)
    problems = [p for c in plan.pending if c.new is not None for p in storable_problems(c.new, c.label)]
    if problems:
        raise DeployRefused(plan.root, problems)
    result = Result()
    pending = plan.pending
    total = len(pending)
    limit = anyio.Semaphore(concurrency)
    conflicts = []

    async def run(ch):
        async with limit:
            await _one(client, plan, ch, result, conflicts, keep)
        if progress is not None:
            progress(result.written + len(conflicts), total)

    for kind, actions in STEPS:
        step = [c for c in pending if c.kind == kind and c.action in actions]
        if not step:
            continue
        async with anyio.create_task_group() as tg:
            for ch in step:
                tg.start_soon(run, ch)
        if conflicts:
            raise DeployConflict(sorted(conflicts), result)
    await _write_manifests(client, plan, result)
    return result


async def _write_manifests(client, plan, result):
    """The tree's manifest, and those of the trees it took entries over
    from; each only if unchanged since the plan read it."""
    if not plan.manifest_changed:
        return
    by = getattr(client, "client_name", None)
    base = plan.prefixes.manifests
    writes = [(plan.name, Manifest(plan.name, plan.entries).to_value(by=by, source=plan.root), plan.manifest)]
    for other, keys in sorted(plan.take_over.items()):
        om = plan.others[other]
        left = Manifest(other, {k: h for k, h in om.entries.items() if k not in keys})
        writes.append((other, left.to_value(by=om.by, source=om.source, deployed=om.deployed), om))
    failed = []
    for name, value, old in writes:
        try:
            await write_entry(client, base, Path(name), value, chain=old.chain if old is not None else None)
        except Conflict:
            failed.append(f"manifest of deploy tree {name!r}")
    if failed:
        raise DeployConflict(failed, result)
