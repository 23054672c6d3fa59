"""One-shot operations on stored modules (what ``distkv client module`` calls)."""

from distkv.default import CFG

from distkv_ext.codekit.core.compiler import compile_module_code
from distkv_ext.codekit.core.depgraph import find_cycle, needed_by, static_imports
from distkv_ext.codekit.core.errors import CodeError, InputRefused
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.signing import SIG_FIELD, with_signature
from distkv_ext.codekit.store import history
from distkv_ext.codekit.store.entries import delete_entry, get_entry, list_entries, write_entry

from ._value import check_requires_acyclic, dotted, module_value

__all__ = [
    "DEFAULT_PREFIX",
    "get_module",
    "list_modules",
    "store_module",
    "remove_module",
    "snapshot",
    "module_graph",
    "check_modules",
    "InUse",
    "revert_module",
    "requires_of",
    "needs_of",
]

#: Where DistKV keeps modules unless configured otherwise (``modules.prefix``).
DEFAULT_PREFIX = CFG.modules.prefix
PROC_PREFIX = CFG.codes.prefix


class InUse(InputRefused):
    """A module that others need cannot be deleted (without ``force``)."""


async def get_module(client, path, *, prefix=DEFAULT_PREFIX):
    """Return ``(value, chain)`` of a stored module; `NotFound` if none."""
    return await get_entry(client, prefix, as_path(path, "module"), "module")


async def list_modules(client, path=(), *, max_depth=None, prefix=DEFAULT_PREFIX):
    """Yield ``(path, value)`` of the modules at and below ``path``."""
    async for p, v in list_entries(client, prefix, path, max_depth=max_depth):
        yield p, v


async def snapshot(client, *, prefix=DEFAULT_PREFIX, proc_prefix=PROC_PREFIX):
    """({module name: value}, {procedure name: value}) of the whole store."""
    mods = {dotted(p): v async for p, v in list_entries(client, prefix)}
    procs = {}
    if proc_prefix is not None:
        procs = {dotted(p): v async for p, v in list_entries(client, proc_prefix)}
    return mods, procs


def requires_of(value):
    """The ``requires`` of a stored module or procedure, as a list."""
    r = value.get("requires", ()) if isinstance(value, dict) else ()
    return list(r) if isinstance(r, (list, tuple)) else []


def _code(value):
    return value.get("code") if isinstance(value, dict) else None


def needs_of(value, stored):
    """What a stored module or procedure needs: its ``requires`` and the
    stored modules it imports."""
    code = _code(value)
    imports = static_imports(code) & set(stored) if isinstance(code, str) else set()
    return sorted(set(requires_of(value)) | imports)


async def store_module(client, path, edit, *, prefix=DEFAULT_PREFIX, dry_run=False, signing_key=None, carry=()):
    """Create or change a stored module.

    ``edit(old)`` gets ``{"code", "requires", "info"}`` (or None when
    nothing is stored) and returns the new fields.  Refused, with nothing
    written: code that does not compile, ``requires`` that would close a
    cycle.  The write is conditional on the entry being unchanged since it
    was read.  ``signing_key`` and ``carry``: as for `store_procedure`
    (the signature).  Returns ``(action, value)`` as `store_procedure` does.
    """
    path = as_path(path, "module")
    name = dotted(path)
    mods, _ = await snapshot(client, prefix=prefix, proc_prefix=None)
    try:
        old_value, chain = await get_entry(client, prefix, path, "module")
    except CodeError as exc:
        if exc.exit_status != 3:
            raise
        old_value, chain = None, None
    old = None
    if old_value is not None:
        old = {"code": _code(old_value), "requires": requires_of(old_value), "info": old_value.get("info")}
    new = edit(None if old is None else dict(old))
    value = module_value(path, new["code"], requires=new.get("requires", ()), info=new.get("info"))
    graph = {k: requires_of(v) for k, v in mods.items()}
    check_requires_acyclic(graph, name, value["requires"])
    stored_sig = [old_value.get(SIG_FIELD)] if isinstance(old_value, dict) else []
    value = with_signature("module", path, value, signing_key, [*carry, *stored_sig])
    if old is not None and old == {
        "code": value["code"],
        "requires": value["requires"],
        "info": value.get("info"),
    }:
        if old_value.get(SIG_FIELD) == value.get(SIG_FIELD):
            return "unchanged", old_value
    if not dry_run:
        await history.record(client, "module", path, old_value)
        await write_entry(client, prefix, path, value, chain=chain)
    return ("created" if old_value is None else "updated"), value


async def remove_module(client, path, *, force=False, prefix=DEFAULT_PREFIX, proc_prefix=PROC_PREFIX):
    """Delete a stored module; return its value.

    Refused with `InUse` (naming them) when other modules or procedures
    need it, unless ``force``.  `NotFound` if there is none.
    """
    path = as_path(path, "module")
    name = dotted(path)
    value, _ = await get_entry(client, prefix, path, "module")
    if not force:
        mods, procs = await snapshot(client, prefix=prefix, proc_prefix=proc_prefix)
        users = [f"module {m}" for m, v in sorted(mods.items()) if m != name and name in needs_of(v, mods)]
        users += [f"procedure {p}" for p, v in sorted(procs.items()) if name in needs_of(v, mods)]
        if users:
            raise InUse(f"{name} is needed by {', '.join(users)}; use --force to delete it anyway")
    await history.record(client, "module", path, value)
    return await delete_entry(client, prefix, path, "module")


async def revert_module(client, path, to=None, *, prefix=DEFAULT_PREFIX, signing_key=None):
    """Store version ``to`` (default: the latest saved) of a module's history
    again (checked like any change), with its signature (or signed with
    ``signing_key``); returns (action, value)."""
    path = as_path(path, "module")
    rec = await history.pick(client, "module", path, to)
    v = rec["value"]
    carry = [v.get(SIG_FIELD)] if isinstance(v, dict) else []
    return await store_module(
        client,
        path,
        lambda old: {"code": _code(v), "requires": requires_of(v), "info": v.get("info")},
        prefix=prefix,
        signing_key=signing_key,
        carry=carry,
    )


async def module_graph(client, *, prefix=DEFAULT_PREFIX, proc_prefix=PROC_PREFIX):
    """The dependency graph: {name: {"kind", "requires", "needs", "needed_by"}}
    for every stored module and procedure (procedures as ``proc:NAME``)."""
    mods, procs = await snapshot(client, prefix=prefix, proc_prefix=proc_prefix)
    nodes = {}
    for m, v in mods.items():
        nodes[m] = {"kind": "module", "requires": requires_of(v), "needs": needs_of(v, mods)}
    for p, v in procs.items():
        nodes[f"proc:{p}"] = {"kind": "procedure", "requires": requires_of(v), "needs": needs_of(v, mods)}
    edges = {k: n["needs"] for k, n in nodes.items()}
    for k, n in nodes.items():
        n["needed_by"] = needed_by(edges, k)
    return nodes


async def check_modules(client, *, prefix=DEFAULT_PREFIX, proc_prefix=PROC_PREFIX):
    """Problems of the stored modules, as a list of ``(name, message)``:
    modules that do not compile, ``requires`` (of modules and procedures)
    naming modules that are not stored, and cycles of ``requires``.
    An empty list means all is well."""
    mods, procs = await snapshot(client, prefix=prefix, proc_prefix=proc_prefix)
    problems = []
    for m, v in sorted(mods.items()):
        code = _code(v)
        if not isinstance(code, str):
            problems.append((m, "has no code (not a module entry)"))
            continue
        try:
            compile_module_code(code, m)
        except CodeError as exc:
            problems.append((m, f"does not compile: {exc}"))
    for kind, items in (("module", mods), ("procedure", procs)):
        for n, v in sorted(items.items()):
            for r in requires_of(v):
                if r not in mods:
                    problems.append((n, f"{kind} {n} requires {r}, which is not stored"))
    graph = {k: requires_of(v) for k, v in mods.items()}
    seen = set()
    for m in sorted(graph):
        cyc = find_cycle(graph, start=m)
        if cyc and frozenset(cyc) not in seen:
            seen.add(frozenset(cyc))
            problems.append((cyc[0], f"requires form a cycle: {' -> '.join(cyc)}"))
    return problems
