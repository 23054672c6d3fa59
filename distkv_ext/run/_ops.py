"""One-shot operations on runner entries (what ``distkv client run`` calls)."""

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from moat.util import Path

from distkv_ext.codekit.core.digest import pin_hash
from distkv_ext.codekit.core.errors import InputRefused, NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.store.conn import server_errors
from distkv_ext.codekit.store.entries import (
    delete_entry,
    get_entry,
    list_entries,
    list_entries_with_chain,
    write_entry,
)

from ._layout import (
    JOB_FIELDS,
    MODULE_PREFIX,
    OUTPUT_PREFIX,
    PAUSE_PREFIX,
    PROC_PREFIX,
    RUN_PREFIX,
    STATE_PREFIX,
    job_value,
    pause_path,
    runner_subpath,
    split_job_path,
    stamp_target,
)
from ._policy import POLICIES
from ._registry import auth_summary, group_records

__all__ = [
    "unsupplied_variables",
    "store_job",
    "get_job",
    "remove_job",
    "list_jobs",
    "job_states",
    "job_output",
    "follow_output",
    "all_states",
    "states_of",
    "group_auth",
    "auth_words",
]


def _fields(value: Any) -> dict[str, Any] | None:
    return {k: value[k] for k in JOB_FIELDS if isinstance(value, dict) and k in value}


async def store_job(
    client: Any,
    kind: str,
    group: Any,
    path: Any,
    edit: Callable[[dict[str, Any] | None], dict[str, Any]],
    *,
    node: Any = None,
    prefix: Path = RUN_PREFIX,
    proc_prefix: Path = PROC_PREFIX,
    module_prefix: Path = MODULE_PREFIX,
) -> tuple[str, Any]:
    """Create or change the runner entry ``path`` of a group.

    ``edit(old)`` gets the current fields (None if there is no entry) and
    returns the new ones; ``pin=True`` pins the procedure and the stored
    modules it needs as they are now (`digest.pin_hash`).
    Refused: a procedure that is not stored (`NotFound`), required
    variables that neither the job's data, its ``args`` (positional: they
    fill the procedure's variables in order) nor the procedure's defaults
    supply, more ``args`` than the procedure has variables, bad numbers
    (`InputRefused`).  Returns (action, value), the
    action being "created", "updated" or "unchanged" (nothing written).
    """
    sub = Path.build(runner_subpath(kind, group, node))
    path = as_path(path, "job")
    try:
        old_value, chain = await get_entry(client, prefix + sub, path, "job")
    except NotFound:
        old_value, chain = None, None
    fields = edit(None if old_value is None else _fields(old_value))
    pin = fields.get("pin")
    value = job_value({**fields, "pin": None})
    proc, _ = await get_entry(client, proc_prefix, value["code"], "procedure")
    too_many, missing = unsupplied_variables(proc, value)
    if too_many:
        raise InputRefused(too_many)
    if missing:
        raise InputRefused(f"procedure {value['code']} needs {', '.join(missing)}: give them with -v/-e/-p")
    if pin is True:
        mods = {".".join(str(x) for x in p): v async for p, v in list_entries(client, module_prefix)}
        value["pin"] = pin_hash(proc, mods.get)
    elif pin:
        value["pin"] = pin
    value = stamp_target(value, old_value, time.time())
    if old_value is not None and dict(old_value) == value:
        return "unchanged", old_value
    await write_entry(client, prefix + sub, path, value, chain=chain)
    return ("created" if old_value is None else "updated"), value


def unsupplied_variables(proc: Any, value: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """What a job (its checked ``value``) leaves out of its procedure
    ``proc`` (a stored procedure's value): (a problem with its positional
    ``args`` or None, the variables that neither its data, its ``args``
    (they fill the variables in order) nor the procedure's defaults
    supply)."""
    params = list(proc.get("vars", ()) or ())
    args = value.get("args") or []
    if len(args) > len(params):
        return (
            f"procedure {value['code']} takes {len(params)} positional argument{'s' * (len(params) != 1)}"
            f"{' (' + ', '.join(params) + ')' if params else ''}, the job gives {len(args)}"
        ), []
    have = set(value.get("data") or ()) | set(proc.get("default") or {}) | set(params[: len(args)])
    return None, [v for v in params if v not in have]


async def get_job(
    client: Any, kind: str, group: Any, path: Any, *, node: Any = None, prefix: Path = RUN_PREFIX
) -> tuple[Any, Any]:
    """(value, chain) of a runner entry; `NotFound` if none."""
    sub = Path.build(runner_subpath(kind, group, node))
    res: tuple[Any, Any] = await get_entry(client, prefix + sub, as_path(path, "job"), "job")
    return res


async def remove_job(
    client: Any,
    kind: str,
    group: Any,
    path: Any,
    *,
    node: Any = None,
    prefix: Path = RUN_PREFIX,
    pause_prefix: Path = PAUSE_PREFIX,
) -> Any:
    """Delete a runner entry (its runner stops the job) and its pause
    (``run pause``: a new job of that name is not paused); return the
    value it had.  `NotFound` if there is none."""
    sub = Path.build(runner_subpath(kind, group, node))
    path = as_path(path, "job")
    value = await delete_entry(client, prefix + sub, path, "job")
    async with server_errors():
        await client.delete(pause_path(pause_prefix, kind, group, node, path))
    return value


async def job_states(
    client: Any, kind: str, group: Any, path: Any, *, node: Any = None, prefix: Path = STATE_PREFIX
) -> dict[str, Any]:
    """{node or "": state value} of a job (all-node jobs: one per node;
    empty if it never ran)."""
    return {m: v for m, _, v, _ in await job_state_entries(client, kind, group, path, node=node, prefix=prefix)}


async def job_state_entries(
    client: Any, kind: str, group: Any, path: Any, *, node: Any = None, prefix: Path = STATE_PREFIX
) -> list[tuple[str, Path, Any, Any]]:
    """(node or "", its path below ``prefix`` + the group's subpath, value,
    chain) of each state of a job (all-node jobs: one per node); the chain
    makes a later write conditional on the state being unchanged."""
    path = as_path(path, "job")
    sub = Path.build(runner_subpath(kind, group, node))
    if POLICIES[kind].state_per_member:
        return [
            (str(p[0]), p, v, chain)
            async for p, v, chain in list_entries_with_chain(client, prefix + sub)
            if len(p) == len(path) + 1 and tuple(p[1:]) == tuple(path)
        ]
    return [
        ("", p, v, chain)
        async for p, v, chain in list_entries_with_chain(client, prefix + sub, path, max_depth=0)
        if tuple(p) == tuple(path)
    ]


async def all_states(client: Any, *, prefix: Path = STATE_PREFIX) -> dict[tuple[Any, ...], Any]:
    """Every stored job state: {state subpath (a tuple): value}, for `states_of`."""
    return {tuple(p): v async for p, v in list_entries(client, prefix)}


def states_of(states: Mapping[tuple[Any, ...], Any], kind: str, group: Any, node: Any, path: Any) -> dict[str, Any]:
    """{node or "": state} of one job, picked from `all_states`' result
    (all-node jobs have one state per node)."""
    sub = runner_subpath(kind, group, node)
    job = tuple(path)
    if POLICIES[kind].state_per_member:
        return {str(k[len(sub)]): s for k, s in states.items() if k[: len(sub)] == sub and k[len(sub) + 1 :] == job}
    return {"": states[sub + job]} if sub + job in states else {}


async def list_jobs(
    client: Any,
    group: Any = None,
    *,
    prefix: Path = RUN_PREFIX,
    state_prefix: Path = STATE_PREFIX,
    output_prefix: Path | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every runner entry (of ``group``, if given) with its state(s).

    Yields dicts: kind, group, node (single-node jobs), path, value,
    states ({node or "": state value}), last_output (the last line of
    the latest run, if ``output_prefix`` is given).
    """
    states = await all_states(client, prefix=state_prefix)
    # run subpath (without the run number) -> ((run number, started), line): the
    # latest run has the highest number; its start is some node's clock
    last: dict[tuple[Any, ...], tuple[Any, Any]] = {}
    if output_prefix is not None:
        async for p, v in list_entries(client, output_prefix):
            if isinstance(v, dict) and v.get("lines"):
                key, t = tuple(p[:-1]), (_run_number(v), v.get("started") or 0)
                if key not in last or last[key][0] <= t:
                    last[key] = (t, v["lines"][-1][2])
    async for p, v in list_entries(client, prefix):
        parts = split_job_path(p)
        if parts is None or not isinstance(v, dict) or "code" not in v:
            continue
        kind, grp, node, job = parts
        if group is not None and grp != group:
            continue
        sub = runner_subpath(kind, grp, node)
        st = states_of(states, kind, grp, node, job)
        if POLICIES[kind].state_per_member:
            lines = [last[k] for k in last if k[: len(sub)] == sub and k[len(sub) + 1 :] == tuple(job)]
        else:
            lines = [last[sub + tuple(job)]] if sub + tuple(job) in last else []
        out = max(lines)[1] if lines else None
        yield {"kind": kind, "group": grp, "node": node, "path": job, "value": v, "states": st, "last_output": out}


def _job_output_root(kind: str, group: Any, node: Any = None) -> Path:
    sub = runner_subpath(kind, group, node)
    return Path.build(sub)


async def job_output(
    client: Any, kind: str, group: Any, path: Any, *, node: Any = None, prefix: Path = OUTPUT_PREFIX
) -> list[dict[str, Any]]:
    """The stored output of a job's runs, oldest first: dicts with node,
    run, started, stopped, ok, error, lines ([time, stream, text]), dropped."""
    path = as_path(path, "job")
    base = prefix + _job_output_root(kind, group, node)
    res: list[dict[str, Any]] = []
    if POLICIES[kind].state_per_member:
        async for p, v in list_entries(client, base):
            if len(p) == len(path) + 2 and tuple(p[1:-1]) == tuple(path) and isinstance(v, dict):
                res.append(v)
    else:
        async for p, v in list_entries(client, base + path, max_depth=1):
            if len(p) == 1 and isinstance(v, dict):
                res.append(v)
    if POLICIES[kind].state_per_member:  # each member counts its own runs: by start (its clock)
        res.sort(key=lambda v: (v.get("started") or 0, v.get("node") or "", _run_number(v)))
    else:  # one count for every node: by run number, whatever the nodes' clocks say
        res.sort(key=lambda v: (_run_number(v), v.get("started") or 0))
    return res


def _run_number(v: Mapping[str, Any]) -> int:
    """The run number a run's output records (0 if none)."""
    n = v.get("run")
    return n if isinstance(n, int) and not isinstance(n, bool) else 0


async def follow_output(
    client: Any, kind: str, group: Any, path: Any, *, node: Any = None, prefix: Path = OUTPUT_PREFIX
) -> AsyncIterator[tuple[dict[str, Any], list[Any]]]:
    """Yield ``(run output dict, new lines)`` as a job's output grows,
    starting with what is stored; runs forever (cancel it)."""
    path = as_path(path, "job")
    base = prefix + _job_output_root(kind, group, node)
    seen: dict[tuple[Any, Any], int] = {}
    async with server_errors():
        async with client.watch(base, fetch=True, long_path=True) as w:
            async for msg in w:
                p = msg.get("path")
                v = msg.get("value")
                if p is None or not isinstance(v, dict) or "lines" not in v:
                    continue
                p = tuple(p)
                if p[: len(base)] == tuple(base):  # watch paths are absolute
                    p = p[len(base) :]
                job = tuple(p[1:-1]) if POLICIES[kind].state_per_member else tuple(p[:-1])
                if job != tuple(path):
                    continue
                key = (v.get("node"), v.get("run"))
                lines = list(v.get("lines") or ())
                done = seen.get(key, 0)
                # the buffer keeps the last N lines: find where we left off
                skip = max(0, done - int(v.get("dropped") or 0))
                new = lines[skip:]
                seen[key] = int(v.get("dropped") or 0) + len(lines)
                if new:
                    yield v, new


async def group_auth(
    client: Any, kind: str, group: Any, node: str | None = None, *, state_prefix: Path = STATE_PREFIX
) -> dict[str, Any] | None:
    """How the runners of a group speak, from their records (`_registry`):
    ``auth`` ("authenticated", "unauthenticated", "mixed", or "unknown" when
    no runner of the group runs), the nodes without a group key, the key
    ids, the trusted code keys and the nodes that run unsigned code, plus
    ``runners`` (the records).  ``node``: the NODE of single-node jobs
    (their runners' group is NODE's).  None when the kind's runners have
    no group channel."""
    if not POLICIES[kind].heartbeat_group or (kind == "single" and not node):
        return None
    records = await group_records(client, state_prefix, runner_subpath(kind, group, node))
    return dict(auth_summary(records), runners=records)


def auth_words(summary: dict[str, Any] | None) -> str | None:
    """`group_auth`'s answer in words (for ``run why`` / ``run list``), or None."""
    if summary is None:
        return None
    auth = summary["auth"]
    if auth == "unknown":
        words = "no runner of the group is running"
    elif auth == "authenticated":
        words = f"authenticated (group key {', '.join(summary['keys'])})"
    else:
        words = f"UNAUTHENTICATED: no group key on {', '.join(summary['unauthenticated'])}"
        if auth == "mixed":
            words = f"MIXED: {words}, the others have one"
    if summary["runners"]:
        if summary["unsigned_ok"]:
            words += f"; unsigned code runs on {', '.join(summary['unsigned_ok'])}"
        else:
            words += f"; only code signed by {', '.join(summary['trusted_keys'])} runs"
    return words
