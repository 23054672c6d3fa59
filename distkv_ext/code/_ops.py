"""One-shot operations on stored procedures (no live mirror needed).

These are what ``distkv client code`` calls: each reads or writes just
the entries it needs, so a command on a store with thousands of
procedures compiles only the one it touches.
"""

import inspect

import anyio
from distkv.default import CFG

from distkv_ext.codekit.core.compiler import compile_procedure
from distkv_ext.codekit.core.errors import BadArguments, CodeError, ProcedureFailed
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.signing import SIG_FIELD, with_signature
from distkv_ext.codekit.core.values import same_value
from distkv_ext.codekit.store import history
from distkv_ext.codekit.store.entries import delete_entry, get_entry, list_entries, write_entry
from distkv_ext.module import ModuleRoot, load_requires

from ._value import is_process, procedure_value

__all__ = [
    "DEFAULT_PREFIX",
    "get_procedure",
    "list_procedures",
    "store_procedure",
    "remove_procedure",
    "call_procedure",
    "revert_procedure",
]

#: Where DistKV keeps procedures unless configured otherwise (``codes.prefix``).
DEFAULT_PREFIX = CFG.codes.prefix

_FIELDS = ("code", "is_async", "process", "variables", "requires", "info", "default")


async def get_procedure(client, path, *, prefix=DEFAULT_PREFIX):
    """Return ``(value, chain)`` of a stored procedure; `NotFound` if none."""
    return await get_entry(client, prefix, as_path(path, "procedure"), "procedure")


async def list_procedures(client, path=(), *, max_depth=None, prefix=DEFAULT_PREFIX):
    """Yield ``(path, value)`` of the procedures at and below ``path``."""
    async for p, v in list_entries(client, prefix, path, max_depth=max_depth):
        yield p, v


def _as_kwargs(value):
    """Stored value -> keyword arguments of `procedure_value`."""
    return dict(
        code=value.get("code"),
        is_async=value.get("is_async", None),
        process=is_process(value),
        variables=list(value.get("vars", ())),
        requires=list(value.get("requires", ())),
        info=value.get("info", None),
        default=dict(value.get("default", None) or {}),
    )


async def store_procedure(client, path, edit, *, prefix=DEFAULT_PREFIX, dry_run=False, signing_key=None, carry=()):
    """Create or change a stored procedure.

    ``edit(old)`` receives the current fields (a dict with the keyword
    arguments of `procedure_value`, or None when nothing is stored) and
    returns the new ones.  The result is compiled first: code that does
    not compile raises `CompileError` and nothing is written.  The write
    is conditional on the entry not having changed since it was read.

    ``signing_key``: a `SigningKey`: the new version is signed with it.
    Without one, a signature of the stored version (or one of ``carry``,
    signatures of other versions) that is still valid for the new content
    is kept, so changing only ``info`` keeps it signed.

    Returns ``(action, value)``: action is ``"created"``, ``"updated"`` or
    ``"unchanged"`` (then nothing is written).
    """
    path = as_path(path, "procedure")
    try:
        old_value, chain = await get_entry(client, prefix, path, "procedure")
    except CodeError as exc:
        if exc.exit_status != 3:
            raise
        old_value, chain = None, None
    old = None if old_value is None else _as_kwargs(old_value)
    new = edit(None if old is None else dict(old))
    unknown = set(new) - set(_FIELDS)
    if unknown:
        raise TypeError(f"unknown procedure fields: {sorted(unknown)}")
    value = procedure_value(path, **new)
    stored_sig = [old_value.get(SIG_FIELD)] if isinstance(old_value, dict) else []
    value = with_signature("proc", path, value, signing_key, [*carry, *stored_sig])
    if old_value is not None and same_value(old_value, value):
        return "unchanged", old_value
    if not dry_run:
        await history.record(client, "proc", path, old_value)
        await write_entry(client, prefix, path, value, chain=chain)
    return ("created" if old_value is None else "updated"), value


async def remove_procedure(client, path, *, prefix=DEFAULT_PREFIX):
    """Delete a stored procedure (its last version goes to the history);
    return its value.  `NotFound` if none."""
    path = as_path(path, "procedure")
    value, _ = await get_entry(client, prefix, path, "procedure")
    await history.record(client, "proc", path, value)
    return await delete_entry(client, prefix, path, "procedure")


async def revert_procedure(client, path, to=None, *, prefix=DEFAULT_PREFIX, signing_key=None):
    """Store version ``to`` (default: the latest saved) of a procedure's
    history again; the version it replaces is saved in turn.  The saved
    version's signature comes back with it (or ``signing_key`` signs it).
    Returns (action, value); `NotFound` if there is no such version."""
    path = as_path(path, "procedure")
    rec = await history.pick(client, "proc", path, to)
    carry = [rec["value"].get(SIG_FIELD)] if isinstance(rec["value"], dict) else []
    return await store_procedure(
        client, path, lambda old: _as_kwargs(rec["value"]), prefix=prefix, signing_key=signing_key, carry=carry
    )


async def call_procedure(client, path, args=(), kw=None, *, prefix=DEFAULT_PREFIX):
    """Fetch, compile and run one procedure in this process; return its result.

    ``args`` are positional arguments: they fill the procedure's
    variables in order, ``kw`` fills the rest by name (its other keys
    become globals of the code).  Arguments it cannot take (more than its
    variables, a variable without a value) raise `BadArguments` before
    the code runs.  The code sees ``_client`` (this client) as a global unless ``kw``
    sets it.  An exception from the code is raised as `ProcedureFailed`
    (its ``__cause__`` is the original).
    """
    path = as_path(path, "procedure")
    value, _ = await get_procedure(client, path, prefix=prefix)
    proc = compile_procedure(
        value.get("code"),
        path,
        variables=value.get("vars", ()),
        is_async=value.get("is_async", None),
        defaults=value.get("default", None),
    )
    kw = dict(kw or {})
    kw.setdefault("_client", client)
    try:
        proc.bind(args, kw)
    except TypeError as exc:
        raise BadArguments(str(exc)) from None
    # stored modules become importable while this handler runs
    mods = await ModuleRoot.as_handler(client)
    await mods.fetch_needs(value)
    requires = value.get("requires", ()) or ()
    if requires:
        load_requires(requires, f"procedure {path}")  # MissingModule: exit 3
    try:
        if proc.is_async is False:
            res = await anyio.to_thread.run_sync(lambda: proc(*args, **kw))
        else:
            res = proc(*args, **kw)
            if inspect.isawaitable(res):
                res = await res
    except Exception as exc:
        raise ProcedureFailed(path, exc) from exc
    return res
