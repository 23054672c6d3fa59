"""What the page and the JSON API show, computed from a `StatusModel`.

Plain dicts of plain values (strings, numbers, lists): the templates
escape whatever they hold, and `plain` makes anything the store may hold
(paths, bytes, odd types written behind our back) printable and JSON-safe.
Why a job runs or not is `distkv_ext.run.explain_job`, the words of
``distkv client run why``.
"""

import functools
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from moat.util import NotGiven, P, Path

from distkv_ext.codekit.core.digest import content_hash
from distkv_ext.run import TRACEBACK_STREAM, explain_job, job_name

from ._model import JobRef, StatusModel

__all__ = [
    "plain",
    "dotted",
    "job_key",
    "job_query",
    "ref_from_query",
    "job_rows",
    "job_list",
    "members",
    "errors",
    "procedures",
    "summary",
    "job_detail",
]


def plain(v: Any, depth: int = 0) -> Any:
    """``v`` as JSON-able plain data (paths as their string form)."""
    if depth > 20:
        return "…"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, dict):
        return {str(k): plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x, depth + 1) for x in v]
    if v is NotGiven:
        return None
    return repr(v)


def dotted(p: Any) -> str:
    """A path (tuple, list, `Path`) as DistKV writes it: ``heating.pump``."""
    if isinstance(p, Path):
        return str(p)
    if isinstance(p, (list, tuple)):
        return str(Path.build(p))
    return str(Path(p))


def short(text: Any, n: int = 120) -> str:
    t = str(text)
    return t if len(t) <= n else t[: n - 1] + "…"


def job_key(ref: JobRef) -> str:
    """The job's key in the page (the rows' ``data-key``)."""
    return "|".join(
        (ref.kind, dotted((ref.group,)), dotted((ref.node,)) if ref.node is not None else "", dotted(ref.path))
    )


def job_query(ref: JobRef) -> str:
    """The query string of the job's page (``/job?...``)."""
    q = {"k": ref.kind, "g": dotted((ref.group,)), "p": dotted(ref.path)}
    if ref.node is not None:
        q["n"] = dotted((ref.node,))
    return urlencode(q)


def ref_from_query(q: Any) -> JobRef | None:
    """The job a ``/job?...`` query names; None if it names none."""
    try:
        kind = q["k"]
        group = P(q["g"])
        path = P(q["p"])
        node = P(q["n"]) if "n" in q else None
    except Exception:
        return None
    if kind not in ("any", "all", "single") or len(group) != 1 or (kind == "single") != (node is not None):
        return None
    if node is not None and len(node) != 1:
        return None
    return JobRef(kind, group[0], None if node is None else node[0], tuple(path))


def _explain(
    value: Any,
    state: Any,
    heard: Any = None,
    kind: str = "any",
    node: Any = None,
    paused: str | None = None,
    job: str = "",
) -> dict[str, Any]:
    try:
        return explain_job(
            value if isinstance(value, dict) else None,
            state if isinstance(state, dict) else None,
            heard=heard,
            kind=kind,
            node=node,
            paused=paused,
            job=job,  # a calendar job's jitter depends on its name
        )
    except Exception as exc:  # fields of the wrong type, written behind our back
        return {"status": "broken", "verdict": f"unusable runner entry: {exc}", "running_on": None}


def _last_line(outputs: dict[tuple[Any, int], Any], member: Any) -> str | None:
    # the latest run is the highest run number (counted in the state), not the
    # latest start: that is the clock of whichever node ran it
    runs = [((n, o.get("started") or 0), o) for (m, n), o in outputs.items() if member is None or m == member]
    if not runs:
        return None
    lines = [x for x in (max(runs, key=lambda r: r[0])[1].get("lines") or ()) if isinstance(x, (list, tuple))]
    lines = [x for x in lines if len(x) >= 3 and x[1] != TRACEBACK_STREAM]
    return str(lines[-1][2]) if lines else None


def job_rows(model: StatusModel, ref: JobRef) -> list[dict[str, Any]]:
    """The table rows of a job: one, or one per member (all-node jobs)."""
    value = model.jobs.get(ref)
    states = model.states.get(ref) or {}
    members = sorted((m for m in states if m is not None), key=str) if ref.kind == "all" else [None]
    rows = []
    for member in members or [None]:
        st = states.get(member) if member is not None or ref.kind != "all" else None
        ex = _explain(
            value,
            st,
            model.heard_of(ref),
            ref.kind,
            ref.node if ref.kind == "single" else member,
            model.paused(ref),
            job_name(ref.path),
        )
        sd = st if isinstance(st, dict) else {}
        running = ex.get("running_on")
        node = member if ref.kind == "all" else ref.node if ref.kind == "single" else running or sd.get("last_node")
        result = sd.get("result", NotGiven)
        rows.append(
            {
                "key": job_key(ref),
                "query": job_query(ref),
                "path": dotted(ref.path),
                "group": str(ref.group),
                "kind": ref.kind,
                "node": None if node is None else str(node),
                "member": None if member is None else str(member),
                "state": ex.get("status", "broken"),
                "running_on": None if running is None else str(running),
                "started": sd.get("started") or None,
                "stopped": sd.get("stopped") or None,
                "next_start": ex.get("next_start"),
                "result": None if result is NotGiven or result is None else short(repr(plain(result))),
                "error": None if not sd.get("error") else short(sd["error"], 300),
                "why": str(ex.get("verdict", "")),
                "paused": ex.get("paused"),
                "runs": sd.get("runs") or 0,
                "code": dotted(value.get("code"))
                if isinstance(value, dict) and value.get("code") is not None
                else None,
                "info": short(value.get("info"), 200) if isinstance(value, dict) and value.get("info") else None,
                "output": _last_line(model.outputs.get(ref) or {}, member),
            }
        )
    return rows


def _sort_key(ref: JobRef) -> tuple[str, str, str, str]:
    return (str(ref.group), ref.kind, str(ref.node or ""), dotted(ref.path))


def job_list(model: StatusModel) -> list[JobRef]:
    """The jobs shown, in the table's order (group, kind, node, path)."""
    return sorted((r for r in model.jobs if model.shows(r)), key=_sort_key)


def sort_key(ref: JobRef) -> str:
    """A string that sorts jobs as `job_list` does (for the browser)."""
    return "\t".join(_sort_key(ref))


def members(model: StatusModel) -> list[dict[str, Any]]:
    """The members heard on the group channels, one row per group and
    name: kinds it runs, weight, tags (``run all --tag``), jobs held (from
    the states), last heard, live."""
    held: dict[tuple[str, str], int] = {}
    for ref, states in model.states.items():
        for st in states.values():
            if isinstance(st, dict) and st.get("node") is not None:
                k = (str(ref.group), str(st["node"]))
                held[k] = held.get(k, 0) + 1
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for (kind, group, _), obs in sorted(model.observers.items(), key=lambda kv: (str(kv[0][1]), kv[0][0])):
        for m in obs.members():
            key = (str(group), m.name)
            r = rows.setdefault(
                key,
                {
                    "group": str(group),
                    "name": m.name,
                    "kinds": [],
                    "weight": None,
                    "tags": [],
                    "last_heard": 0.0,
                    "live": False,
                },
            )
            r["tags"] = sorted({*r["tags"], *m.tags})
            r["kinds"].append(kind)
            if kind == "any":
                r["weight"] = m.weight
            r["last_heard"] = max(r["last_heard"], m.last_heard)
            r["live"] = r["live"] or m.live
    for key, r in rows.items():
        r["jobs_held"] = held.get(key, 0)
    return [rows[k] for k in sorted(rows)]


def errors(model: StatusModel) -> list[dict[str, Any]]:
    """The open (unresolved) errors shown, newest first."""
    res = []
    for eid, rec in model.errors.items():
        if not isinstance(rec, dict) or rec.get("resolved") or not model.shows_error(rec):
            continue
        details = model.details.get(eid) or {}
        latest = max((d for d in details.values() if isinstance(d, dict)), key=lambda d: d.get("seen") or 0, default={})
        ref = model.error_job(rec)
        res.append(
            {
                "id": dotted(eid),
                "subsystem": str(rec.get("subsystem")),
                "path": dotted(rec.get("path") or ()),
                "job": None if ref is None else {"path": dotted(ref.path), "query": job_query(ref)},
                "message": short(latest.get("message") or latest.get("comment") or "", 500),
                "count": rec.get("count") or 0,
                "first_seen": rec.get("first_seen"),
                "last_seen": rec.get("last_seen"),
                "nodes": sorted(str(n) for n in details),
                "trace": str(latest.get("trace") or ""),
            }
        )
    res.sort(key=lambda e: -(e["last_seen"] or 0) if isinstance(e["last_seen"], (int, float)) else 0)
    return res


def procedures(model: StatusModel) -> list[dict[str, Any]]:
    """The stored procedures with their saved versions and their jobs."""
    used: dict[str, list[dict[str, str]]] = {}
    for ref in job_list(model):
        v = model.jobs.get(ref)
        if isinstance(v, dict) and v.get("code") is not None:
            used.setdefault(dotted(v["code"]), []).append({"path": dotted(ref.path), "query": job_query(ref)})
    res = []
    for path, v in sorted(model.procs.items(), key=lambda kv: dotted(kv[0])):
        if not isinstance(v, dict):
            continue
        name = dotted(path)
        hist = model.history.get(path) or {}
        mode = {None: "sync", False: "thread", True: "async"}.get(v.get("is_async"), str(v.get("is_async")))
        try:
            digest = content_hash(v)
        except Exception:
            digest = "?"
        res.append(
            {
                "path": name,
                "info": short(v.get("info") or "", 200),
                "mode": mode,
                "vars": [str(x) for x in v.get("vars") or ()] if isinstance(v.get("vars"), (list, tuple)) else [],
                "hash": digest,
                "jobs": used.get(name, []),
                "versions": [
                    {
                        "n": n,
                        "replaced": h.get("replaced") if isinstance(h, dict) else None,
                        "by": str(h.get("by")) if isinstance(h, dict) and h.get("by") else None,
                        "hash": str(h.get("hash")) if isinstance(h, dict) and h.get("hash") else None,
                    }
                    for n, h in sorted(hist.items(), reverse=True)
                ],
            }
        )
    return res


def summary(model: StatusModel, rows: Callable[[JobRef], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Counts for the page's head: jobs by state, live members, open
    errors.  ``rows(ref)``: a job's rows (default `job_rows`; the page
    passes its cache, so that a change costs one job's rows)."""
    by_state: dict[str, int] = {}
    for ref in job_list(model):
        for r in (rows or functools.partial(job_rows, model))(ref):
            by_state[r["state"]] = by_state.get(r["state"], 0) + 1
    ms = members(model)
    return {
        "jobs": sum(by_state.values()),
        "by_state": dict(sorted(by_state.items())),
        "members": sum(1 for m in ms if m["live"]),
        "errors": len(errors(model)),
        "now": time.time(),
    }


def job_detail(model: StatusModel, ref: JobRef) -> dict[str, Any] | None:
    """A job's page: its definition, rows (state), runs and output, its
    procedure's code; None if the job is unknown."""
    if ref not in model.jobs and not model.states.get(ref):
        return None
    value = model.jobs.get(ref)
    outputs = model.outputs.get(ref) or {}
    runs = []
    for (member, run), o in sorted(outputs.items(), key=lambda kv: (kv[1].get("started") or 0, str(kv[0][0]))):
        lines = [x for x in (o.get("lines") or ()) if isinstance(x, (list, tuple)) and len(x) >= 3]
        runs.append(
            {
                "member": None if member is None else str(member),
                "run": run,
                "node": str(o.get("node")) if o.get("node") is not None else None,
                "started": o.get("started"),
                "stopped": o.get("stopped"),
                "ok": o.get("ok"),
                "error": o.get("error"),
                "cut": int(o.get("cut") or 0) + int(o.get("dropped") or 0),
                "lines": [{"t": x[0], "stream": str(x[1]), "text": str(x[2])} for x in lines],
            }
        )
    proc = None
    if isinstance(value, dict) and value.get("code") is not None:
        try:
            pv = model.procs.get(tuple(P(dotted(value["code"]))))
        except Exception:
            pv = None
        if isinstance(pv, dict):
            proc = {"path": dotted(value["code"]), "code": str(pv.get("code") or "")}
    return {
        "key": job_key(ref),
        "query": job_query(ref),
        "form": dict(parse_qsl(job_query(ref))),  # the fields a job action takes
        "paused": model.paused(ref),
        "path": dotted(ref.path),
        "group": str(ref.group),
        "kind": ref.kind,
        "node": None if ref.node is None else str(ref.node),
        "definition": plain(value) if value is not None else None,
        "rows": job_rows(model, ref) if ref in model.jobs else [],
        "runs": runs,
        "latest": runs[-1] if runs else None,
        "procedure": proc,
    }
