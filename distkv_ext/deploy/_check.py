"""What only the whole picture shows: the store as it would be after a deploy.

`check_final` finds ``requires`` naming modules that would not be there,
cycles of ``requires``, and jobs whose procedure would be missing or
would lack their variables.  `restarts` finds the running jobs that the
deploy makes their runners restart (or stop).
"""

from moat.util import Path

from distkv_ext.codekit.core.depgraph import find_cycle
from distkv_ext.codekit.core.paths import dotted
from distkv_ext.module import needs_of, requires_of
from distkv_ext.run import states_of, unsupplied_variables

from ._change import job_label

__all__ = ["check_final", "restarts"]


def _gone(kind, path, removed):
    if (kind, path) in removed:
        return "which --prune would remove"
    return "which is neither in the directory nor stored"


def check_final(plan, tree, stored, final_mods, final_procs, removed):
    """Problems (one-line messages) of the store as the plan leaves it."""
    problems = []
    # requires of what the directory brings, and of what stays stored
    for kind, items, stored_items in (
        ("module", tree.modules, stored["module"]),
        ("procedure", tree.procs, stored["procedure"]),
    ):
        for path, item in items.items():
            for r in requires_of(item.value):
                if r not in final_mods:
                    problems.append(
                        f"{item.source}: {kind} {path} requires module {r}, {_gone('module', Path.build(r.split('.')), removed)}"
                    )
        for path, (value, _) in stored_items.items():
            if path in items or (kind, path) in removed:
                continue
            for r in requires_of(value):
                if r not in final_mods and ("module", Path.build(r.split("."))) in removed:
                    problems.append(f"--prune would remove module {r}, which stored {kind} {path} requires")
    graph = {m: requires_of(v) for m, v in final_mods.items()}
    seen = set()
    for path, item in sorted(tree.modules.items(), key=lambda kv: str(kv[0])):
        cyc = find_cycle(graph, start=dotted(path))
        if cyc and frozenset(cyc) not in seen:
            seen.add(frozenset(cyc))
            problems.append(f"{item.source}: requires form a cycle: {' -> '.join(cyc)}")
    # jobs: their procedure, and its variables
    for item in tree.jobs.values():
        code = Path.build(item.value["code"])
        proc = final_procs.get(code)
        if proc is None:
            problems.append(f"{item.source}: runs procedure {code}, {_gone('procedure', code, removed)}")
            continue
        too_many, missing = unsupplied_variables(proc, item.value)
        if too_many:
            problems.append(f"{item.source}: {too_many}")
        elif missing:
            problems.append(f"{item.source}: procedure {code} needs {', '.join(missing)}: give them in the job's data")
    removed_jobs = {c.where + (tuple(c.path),) for c in plan.changes if c.kind == "job" and c.action == "remove"}
    for key, (value, _, path) in stored["job"].items():
        if key in tree.jobs or key in removed_jobs:
            continue
        code = Path.build(value["code"]) if isinstance(value.get("code"), (Path, list, tuple)) else None
        if code is not None and ("procedure", code) in removed:
            problems.append(f"--prune would remove procedure {code}, which stored job {job_label(path, key[:3])} runs")
    return problems


def _reach(value, final_mods):
    """Every module that ``value`` (a procedure or module) needs, directly or not."""
    todo, seen = list(needs_of(value, final_mods)), set()
    while todo:
        m = todo.pop()
        if m in seen or m not in final_mods:
            continue
        seen.add(m)
        todo.extend(needs_of(final_mods[m], final_mods))
    return seen


def restarts(plan, stored_jobs, states, final_mods, final_procs):
    """Running jobs the deploy restarts or stops: dicts with job, nodes, why.
    ``stored_jobs`` as `plan_deploy` reads them, ``states`` from `all_states`."""
    changed_mods = {dotted(c.path) for c in plan.pending if c.kind == "module"}
    procs = {c.path: c.action for c in plan.pending if c.kind == "procedure"}
    jobs = {(c.where, tuple(c.path)): c.action for c in plan.pending if c.kind == "job"}
    res = []
    for key, (value, _, path) in sorted(stored_jobs.items(), key=lambda kv: str(kv[0])):
        nodes = [s.get("node") for s in states_of(states, *key[:3], path).values() if s.get("node")]
        if not nodes:
            continue
        code = Path.build(value.get("code") or ())
        why = None
        if jobs.get((key[:3], tuple(path))) == "remove":
            why = "job removed: stops"
        elif jobs.get((key[:3], tuple(path))) == "change":
            why = "job changed"
        elif code in procs:
            why = f"procedure {code} {'removed: stops' if procs[code] == 'remove' else 'changed'}"
        else:
            proc = final_procs.get(code)
            hit = sorted(changed_mods & _reach(proc, final_mods)) if proc is not None else []
            if hit:
                why = f"module{'s' if len(hit) > 1 else ''} {', '.join(hit)} changed"
        if why:
            res.append({"job": job_label(path, key[:3]), "nodes": sorted(map(str, nodes)), "why": why})
    return res
