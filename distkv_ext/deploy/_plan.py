"""Comparing a deploy directory with the store: the plan.

`plan_deploy` reads the store once (modules, procedures and runner
entries, each with its change chain so that the writes can be made
conditional, and the manifests of the deploy trees), compares, works
out what ``--prune`` removes (what this tree wrote earlier and no longer
has, see `._manifest`), checks what only the whole picture shows
(``requires`` naming modules that will not be there, cycles, jobs whose
procedure is missing or lacks their variables) and finds the running
jobs that the change restarts.  It writes nothing.
"""

import time

import anyio
from moat.util import Path, yformat

from distkv_ext.codekit.core.digest import pin_hash
from distkv_ext.codekit.core.paths import dotted
from distkv_ext.codekit.core.signing import SIG_FIELD, with_signature
from distkv_ext.codekit.core.textdiff import unified_diff
from distkv_ext.codekit.core.values import same_value
from distkv_ext.codekit.store.entries import list_entries_with_chain
from distkv_ext.run import all_states, split_job_path, stamp_target

from ._change import Change, Plan, Prefixes, job_label
from ._check import check_final, restarts
from ._manifest import check_tree_name, entry_hash, read_manifests

__all__ = ["plan_deploy"]


async def _stored(client, prefixes):
    """({kind: {key: (value, chain)}} of the store, {tree name: `Manifest`});
    job keys are (kind, group, node, job path as a tuple)."""
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

    manifests = {}

    async def trees():
        manifests.update(await read_manifests(client, prefixes.manifests))

    async with anyio.create_task_group() as tg:
        tg.start_soon(walk, "module", prefixes.modules)
        tg.start_soon(walk, "procedure", prefixes.procs)
        tg.start_soon(walk, "job", prefixes.jobs)
        tg.start_soon(trees)
    return res, manifests


def _render(kind, value):
    """An entry as text for diffs: its settings, then its code."""
    if not isinstance(value, dict):
        return ""

    if kind == "job":
        return yformat({k: str(v) if isinstance(v, Path) else v for k, v in value.items()}, compact=False)
    settings = {k: v for k, v in value.items() if k != "code" and v not in (None, [], (), {})}
    if kind == "procedure" and "is_async" not in settings:
        settings["is_async"] = value.get("is_async")
    text = yformat(settings, compact=False) if settings else ""
    return text + "---\n" + (value.get("code") or "")


def _compare(plan, kind, want, have, take_over):
    """Add the changes of one kind to the plan (and the manifest's
    entries); ``want``: {key: Item}, ``have``: {key: (value, chain, ...)}."""
    for key, item in want.items():
        mkey = (kind, key)
        old = have.get(key)
        owner, theirs = next(((n, m.entries[mkey]) for n, m in plan.others.items() if mkey in m.entries), (None, None))
        if owner is not None and (old is None or entry_hash(old[0]) != theirs):
            # listed, but no longer stored as that tree wrote it (deleted or
            # changed by hand): not that tree's any more.  Its manifest loses
            # the stale line, lest a later --prune of it remove this tree's entry.
            plan.take_over.setdefault(owner, []).append(mkey)
            plan.notes.append(
                f"deploy tree {owner!r} listed {_label(kind, item.path, item.where)}, no longer stored as it wrote it:"
                " this tree's now"
            )
        elif owner is not None:
            if not take_over:
                plan.problems.append(
                    f"{item.source}: {_label(kind, item.path, item.where)} belongs to deploy tree {owner!r};"
                    " an entry belongs to one tree (--take-over moves it to this one)"
                )
            else:
                plan.take_over.setdefault(owner, []).append(mkey)
                plan.notes.append(f"takes {_label(kind, item.path, item.where)} over from deploy tree {owner!r}")
        if old is None:
            ch = Change(kind, item.path, "add", item.source, None, item.value, None, item.where)
        elif same_value(old[0], item.value, keep_empty=("is_async",) if kind == "procedure" else ()):
            ch = Change(kind, item.path, "unchanged", item.source, old[0], item.value, old[1], item.where)
        else:
            ch = Change(kind, item.path, "change", item.source, old[0], item.value, old[1], item.where)
        plan.changes.append(ch)
        plan.entries[mkey] = entry_hash(ch.new if ch.action != "unchanged" else ch.old)


def _label(kind, path, where=()):
    return f"job {job_label(path, where)}" if kind == "job" else f"{kind} {path}"


def _leftovers(plan, kind, want, have, prune, manages):
    """The entries this tree wrote earlier that it no longer has: removed
    with ``prune`` (if stored as the tree wrote them), else kept in its
    manifest; changed since: no longer the tree's, never pruned."""
    entries = plan.manifest.entries if plan.manifest is not None else {}
    for mkey, h in sorted(entries.items(), key=lambda kv: str(kv[0])):
        if mkey[0] != kind or mkey[1] in want:
            continue
        old = have.get(mkey[1])
        if old is None:
            continue  # gone meanwhile: nothing to remember
        path = old[2] if kind == "job" else mkey[1]
        where = mkey[1][:3] if kind == "job" else ()
        label = _label(kind, path, where)
        if entry_hash(old[0]) != h:
            plan.not_pruned.append(
                {"label": label, "why": f"changed since deploy tree {plan.name!r} wrote it; no longer the tree's"}
            )
            continue
        if prune and kind in manages:
            why = f"written by deploy tree {plan.name!r}, no longer in {plan.root}"
            plan.changes.append(Change(kind, path, "remove", None, old[0], None, old[1], where, why=why))
        else:
            plan.entries[mkey] = h  # still the tree's: a later --prune removes it


def _resolve_jobs(tree, stored, final_procs, final_mods, pin_all, now):
    """Jobs of the directory with ``target: now`` and pins worked out."""
    want = {}
    for key, item in tree.jobs.items():
        value = dict(item.value)
        old = stored["job"].get(key)
        if item.target_now:
            kept = old[0].get("target") if old is not None else None
            value["target"] = kept if kept else now  # now: start it, unless already started
        value = stamp_target(value, old[0] if old is not None else None, now)
        if item.pin or pin_all:
            proc = final_procs.get(Path.build(value["code"]))
            if proc is not None:
                value["pin"] = pin_hash(proc, final_mods.get)
        item.value = value
        want[key] = item
    return want


def _sign(tree, stored, key):
    """Sign the directory's procedures and modules with ``key`` (a
    `SigningKey`); without one, keep the stored signature of an entry whose
    content it still fits (so a deploy without the key changes nothing
    that is signed and unchanged)."""
    for kind, items, have in (("module", tree.modules, stored["module"]), ("proc", tree.procs, stored["procedure"])):
        for path, item in items.items():
            old = have.get(path)
            carry = [old[0].get(SIG_FIELD)] if old is not None and isinstance(old[0], dict) else []
            item.value = with_signature(kind, path, item.value, key, carry)


async def plan_deploy(
    client, tree, *, prune=False, pin=False, prefixes=None, now=None, name=None, take_over=False, signing_key=None
):
    """Compare the `Tree` ``tree`` with the store; return a `Plan`.

    ``name``: the deploy tree's name (default: the directory's name; see
    `._manifest`).  ``prune``: entries that earlier deploys of this tree
    wrote, that it no longer has and that are still as it wrote them are
    removed (only of the kinds the directory has: procedures only with a
    ``procs/`` directory, and so on).  ``pin``: every job pins its
    procedure (and the modules it needs, see `digest.pin_hash`); a job can
    ask for that itself with ``pin: true``.  ``take_over``: entries that
    another tree's manifest lists move to this tree (else each is a
    problem).  ``signing_key``: a `SigningKey` that signs every procedure
    and module.  Nothing is written.
    """
    prefixes = prefixes or Prefixes()
    now = time.time() if now is None else now
    name = check_tree_name(name if name is not None else tree.name)
    stored, manifests = await _stored(client, prefixes)
    _sign(tree, stored, signing_key)
    plan = Plan(root=tree.root, problems=list(tree.problems), prefixes=prefixes, name=name)
    plan.manifest = manifests.pop(name, None)
    plan.others = manifests
    _compare(plan, "module", tree.modules, stored["module"], take_over)
    _compare(plan, "procedure", tree.procs, stored["procedure"], take_over)
    _leftovers(plan, "module", tree.modules, stored["module"], prune, tree.manages)
    _leftovers(plan, "procedure", tree.procs, stored["procedure"], prune, tree.manages)
    if prune and plan.manifest is None:
        plan.notes.append(f"deploy tree {name!r} has no record of an earlier deploy: --prune removes nothing this time")

    removed = {(c.kind, c.path) for c in plan.changes if c.action == "remove"}
    final_mods = {dotted(p): v for p, (v, _) in stored["module"].items() if ("module", p) not in removed}
    final_mods.update({dotted(p): i.value for p, i in tree.modules.items()})
    final_procs = {p: v for p, (v, _) in stored["procedure"].items() if ("procedure", p) not in removed}
    final_procs.update({p: i.value for p, i in tree.procs.items()})

    want_jobs = _resolve_jobs(tree, stored, final_procs, final_mods, pin, now)
    _compare(plan, "job", want_jobs, stored["job"], take_over)
    _leftovers(plan, "job", want_jobs, stored["job"], prune, tree.manages)

    plan.problems += check_final(plan, tree, stored, final_mods, final_procs, removed)
    for ch in plan.changes:
        if ch.action == "change":
            ch.diff = unified_diff(_render(ch.kind, ch.old), _render(ch.kind, ch.new), f"stored: {ch.label}", ch.source)
    if plan.pending:  # only then can a running job be affected
        states = await all_states(client, prefix=prefixes.states)
        plan.restarts = restarts(plan, stored["job"], states, final_mods, final_procs)
    return plan
