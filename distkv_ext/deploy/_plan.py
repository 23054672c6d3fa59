"""Comparing a deploy directory with the store: the plan.

`plan_deploy` reads the store once (modules, procedures and runner
entries, each with its change chain so that the writes can be made
conditional), compares, checks what only the whole picture shows
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
from distkv_ext.run import all_states, split_job_path

from ._change import Change, Plan, Prefixes
from ._check import check_final, restarts

__all__ = ["plan_deploy"]


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


def _resolve_jobs(tree, stored, final_procs, final_mods, pin_all, now):
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


async def plan_deploy(client, tree, *, prune=False, pin=False, prefixes=None, now=None, signing_key=None):
    """Compare the `Tree` ``tree`` with the store; return a `Plan`.

    ``prune``: entries of the kinds the directory manages that it does not
    have are removed.  ``pin``: every job pins its procedure (and the
    modules it needs, see `digest.pin_hash`); a job can ask for that itself
    with ``pin: true``.  ``signing_key``: a `SigningKey` that signs every
    procedure and module.  Nothing is written.
    """
    prefixes = prefixes or Prefixes()
    now = time.time() if now is None else now
    stored = await _stored(client, prefixes)
    _sign(tree, stored, signing_key)
    plan = Plan(root=tree.root, problems=list(tree.problems), prefixes=prefixes)
    _compare(plan, "module", tree.modules, stored["module"], prune, tree.manages)
    _compare(plan, "procedure", tree.procs, stored["procedure"], prune, tree.manages)

    removed = {(c.kind, c.path) for c in plan.changes if c.action == "remove"}
    final_mods = {dotted(p): v for p, (v, _) in stored["module"].items() if ("module", p) not in removed}
    final_mods.update({dotted(p): i.value for p, i in tree.modules.items()})
    final_procs = {p: v for p, (v, _) in stored["procedure"].items() if ("procedure", p) not in removed}
    final_procs.update({p: i.value for p, i in tree.procs.items()})

    want_jobs = _resolve_jobs(tree, stored, final_procs, final_mods, pin, now)
    _compare(plan, "job", want_jobs, stored["job"], prune, tree.manages)

    plan.problems += check_final(plan, tree, stored, final_mods, final_procs, removed)
    for ch in plan.changes:
        if ch.action == "change":
            ch.diff = unified_diff(_render(ch.kind, ch.old), _render(ch.kind, ch.new), f"stored: {ch.label}", ch.source)
    if plan.pending:  # only then can a running job be affected
        states = await all_states(client, prefix=prefixes.states)
        plan.restarts = restarts(plan, stored["job"], states, final_mods, final_procs)
    return plan
