"""Reading and writing entries under a prefix, via DistKV's public client API.

Shared by procedures and modules.  Every call maps a broken or refused
connection to `ServerUnreachable`, so callers see one exception type for
"the server is not there".
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from distkv.exceptions import ServerError
from moat.util import NotGiven, Path

from distkv_ext.codekit.core.errors import Conflict, NotFound
from distkv_ext.codekit.core.paths import PathSpec

from .clientapi import Client
from .conn import server_errors

__all__ = [
    "get_entry",
    "list_entries",
    "list_entries_with_chain",
    "write_entry",
    "delete_entry",
    "is_chain_error",
]


def is_chain_error(exc: BaseException) -> bool:
    """Did the server refuse a conditional write or delete because the
    entry changed (or appeared, or went) since the chain the writer had?
    (DistKV's ``ClientChainError``, which reaches the client as a
    `ServerError` carrying its repr.)"""
    return isinstance(exc, ServerError) and str(exc).startswith("ClientChainError")


async def get_entry(client: Client, prefix: Path, path: Path, what: str = "entry") -> tuple[Any, Any]:
    """Return ``(value, chain)`` of the entry at ``prefix + path``.

    Raises `NotFound` (naming ``what``) when there is none or its value is
    None, `ServerUnreachable` when the server cannot be reached.
    """
    async with server_errors():
        res = await client.get(prefix + path, nchain=2)
    if "value" not in res or res.value is None:
        raise NotFound(what, path)
    return res.value, res.get("chain", None)


async def list_entries(
    client: Client, prefix: Path, path: PathSpec = (), max_depth: int | None = None
) -> AsyncIterator[tuple[Path, Any]]:
    """Yield ``(subpath, value)`` for every entry below ``prefix + path``
    (``path`` itself included) that has a value other than None.

    ``subpath`` is relative to ``prefix``.  ``max_depth`` counts levels
    below ``path`` (None: all).  A path that never existed yields nothing.
    """
    async for p, v, _ in _walk(client, prefix, path, max_depth, 0):
        yield p, v


async def list_entries_with_chain(
    client: Client, prefix: Path, path: PathSpec = (), max_depth: int | None = None
) -> AsyncIterator[tuple[Path, Any, Any]]:
    """Like `list_entries`, yielding ``(subpath, value, chain)``: the chain
    makes a later write conditional on the entry being unchanged."""
    async for r in _walk(client, prefix, path, max_depth, 2):
        yield r


async def _walk(
    client: Client, prefix: Path, path: PathSpec, max_depth: int | None, nchain: int
) -> AsyncIterator[tuple[Path, Any, Any]]:
    kw: dict[str, int] = {}
    if max_depth is not None:
        kw["max_depth"] = max_depth
    if nchain:
        kw["nchain"] = nchain
    path = Path.build(path)
    try:
        async with server_errors():
            async for r in client.get_tree(prefix + path, **kw):
                val = r.get("value", NotGiven)
                if val is NotGiven or val is None:
                    continue
                yield path + r.path, val, r.get("chain", None)
    except ServerError as exc:
        # the server answers a walk of a path that never existed with KeyError
        if not str(exc).startswith("KeyError"):
            raise


async def write_entry(client: Client, prefix: Path, path: Path, value: Any, chain: Any = NotGiven) -> Any:
    """Store ``value`` at ``prefix + path``; return DistKV's reply (with
    the new ``chain``).  With ``chain``, only if the entry is unchanged
    since it was read (``chain=None``: only if there is none), else
    `Conflict`."""
    async with server_errors(), _conflicts(path):
        return await client.set(prefix + path, value=value, chain=chain, nchain=2)


async def delete_entry(client: Client, prefix: Path, path: Path, what: str = "entry", chain: Any = NotGiven) -> Any:
    """Delete the entry; `NotFound` if there is none.  Returns the old value.

    With ``chain`` (from an earlier read), only if it is unchanged since,
    else `Conflict`; the old value is not read then and None is returned."""
    if chain is NotGiven:
        value, chain = await get_entry(client, prefix, path, what)
    else:
        value = None
    async with server_errors(), _conflicts(path):
        await client.delete(prefix + path, chain=chain, nchain=2)
    return value


@asynccontextmanager
async def _conflicts(path: object) -> AsyncIterator[None]:
    """A conditional write that lost against someone else's becomes `Conflict`."""
    try:
        yield
    except ServerError as exc:
        if is_chain_error(exc):
            raise Conflict(path) from exc
        raise
