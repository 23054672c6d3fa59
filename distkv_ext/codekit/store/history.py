"""Version history of stored procedures and modules.

Every change made through distkv-code (``code set``, ``module set``,
``delete``, ``revert``, and the library's ``add``/``remove``) first saves
the version it replaces at ``.distkv code history KIND PATH N`` (KIND is
``proc`` or ``module``; N counts up), with when, by whom (the DistKV client
name) and a content hash.  Only the last ``keep`` versions are kept (10 by
default).  Changes written by other tools (DistKV's own CLI, direct
writes) are not recorded.
"""

import time
from typing import Any, Literal, NotRequired, TypedDict, cast

from moat.util import P, Path

from distkv_ext.codekit.core.digest import content_hash
from distkv_ext.codekit.core.errors import Conflict, NotFound
from distkv_ext.codekit.core.paths import PathSpec, as_path

from .clientapi import Client
from .conn import server_errors
from .entries import list_entries, write_entry

__all__ = [
    "HISTORY_PREFIX",
    "content_hash",
    "record",
    "versions",
    "pick",
    "DEFAULT_KEEP",
    "HistoryKind",
    "Version",
]

#: Where the history lives.
HISTORY_PREFIX: Path = P(":.distkv.code.history")
#: How many saved versions of an entry are kept.
DEFAULT_KEEP = 10
#: How often `record` tries the next free number before giving up.
_ATTEMPTS = 50

#: What a history is kept of: procedures or modules.
HistoryKind = Literal["proc", "module"]


class Version(TypedDict):
    """A saved version, as `versions` returns it: ``n`` (its number) and
    the record that `record` stored.  A record written by another tool may
    lack all but ``value``."""

    n: int
    #: the stored value (a dict) that was replaced
    value: Any
    #: when (Unix time)
    replaced: NotRequired[float]
    #: the DistKV client name of who replaced it
    by: NotRequired[str | None]
    #: `content_hash` of ``value``
    hash: NotRequired[str | None]


async def versions(
    client: Client, kind: HistoryKind, path: PathSpec, *, prefix: Path = HISTORY_PREFIX
) -> list[Version]:
    """The saved versions of ``path``, oldest first: dicts with n, value,
    replaced (time), by, hash (see `Version`).  Records without a
    ``value`` or with a name that is no number are skipped."""
    path = as_path(path)
    res: list[Version] = []
    async for p, v in list_entries(client, prefix + (kind,) + path, max_depth=1):
        if len(p) == 1 and isinstance(v, dict) and "value" in v:
            try:
                res.append(cast(Version, dict(v, n=int(p[0]))))  # stored: untyped
            except ValueError:
                continue
    res.sort(key=lambda v: v["n"])
    return res


async def record(
    client: Client,
    kind: HistoryKind,
    path: PathSpec,
    old_value: Any,
    *,
    keep: int = DEFAULT_KEEP,
    prefix: Path = HISTORY_PREFIX,
) -> int | None:
    """Save ``old_value`` (the version about to be replaced) of ``path``;
    drop versions beyond the last ``keep``.  Returns the new version number;
    with ``old_value`` None (nothing replaced) saves nothing, returns None.

    The version is written only if its number is still free (DistKV's
    conditional write, ``chain=None``); a writer that loses the race for
    a number takes the next one, so concurrent writers through one server
    never share a number and no saved version is overwritten.  (Two
    writers on two servers within the moment the servers take to exchange
    the write can still collide: DistKV 0.65 decides conditions per
    server.)"""
    if old_value is None:
        return None
    path = as_path(path)
    base = prefix + (kind,) + path
    rec = {
        "value": old_value,
        "replaced": time.time(),
        "by": getattr(client, "client_name", None),
        "hash": content_hash(old_value, kind),
    }
    for _ in range(_ATTEMPTS):
        old = await versions(client, kind, path, prefix=prefix)
        n = (old[-1]["n"] + 1) if old else 1
        try:
            await write_entry(client, base, Path(str(n)), rec, chain=None)
        except Conflict:
            continue  # someone else saved version n meanwhile: take the next
        break
    else:
        raise Conflict(path, f"could not save the replaced version of {path}: too many concurrent changes")
    async with server_errors():
        for v in old[: max(0, len(old) + 1 - keep)]:
            await client.delete(base + (str(v["n"]),))
    return n


async def pick(
    client: Client, kind: HistoryKind, path: PathSpec, n: int | None = None, *, prefix: Path = HISTORY_PREFIX
) -> Version:
    """Saved version ``n`` (default: the latest) of ``path``; `NotFound`
    when there is no such version."""

    vs = await versions(client, kind, path, prefix=prefix)
    if n is not None:
        vs = [v for v in vs if v["n"] == n]
    if not vs:
        what = "saved version" if n is None else f"version {n}"
        raise NotFound(what, path, f"no {what} of {as_path(path)} in the history")
    return vs[-1]
