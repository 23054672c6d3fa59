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

from moat.util import P

from distkv_ext.codekit.core.digest import content_hash
from distkv_ext.codekit.core.errors import NotFound
from distkv_ext.codekit.core.paths import as_path

from .conn import server_errors
from .entries import list_entries

__all__ = ["HISTORY_PREFIX", "content_hash", "record", "versions", "pick", "DEFAULT_KEEP"]

HISTORY_PREFIX = P(":.distkv.code.history")
DEFAULT_KEEP = 10


async def versions(client, kind, path, *, prefix=HISTORY_PREFIX):
    """The saved versions of ``path``, oldest first: dicts with n, value,
    replaced (time), by, hash."""
    path = as_path(path)
    res = []
    async for p, v in list_entries(client, prefix + (kind,) + path, max_depth=1):
        if len(p) == 1 and isinstance(v, dict) and "value" in v:
            try:
                res.append(dict(v, n=int(p[0])))
            except ValueError:
                continue
    res.sort(key=lambda v: v["n"])
    return res


async def record(client, kind, path, old_value, *, keep=DEFAULT_KEEP, prefix=HISTORY_PREFIX):
    """Save ``old_value`` (the version about to be replaced) of ``path``;
    drop versions beyond the last ``keep``.  Returns the new version number."""
    if old_value is None:
        return None
    path = as_path(path)
    old = await versions(client, kind, path, prefix=prefix)
    n = (old[-1]["n"] + 1) if old else 1
    rec = {
        "value": old_value,
        "replaced": time.time(),
        "by": getattr(client, "client_name", None),
        "hash": content_hash(old_value),
    }
    async with server_errors():
        await client.set(prefix + (kind,) + path + (str(n),), value=rec)
        for v in old[: max(0, len(old) + 1 - keep)]:
            await client.delete(prefix + (kind,) + path + (str(v["n"]),))
    return n


async def pick(client, kind, path, n=None, *, prefix=HISTORY_PREFIX):
    """Saved version ``n`` (default: the latest) of ``path``; `NotFound`."""

    vs = await versions(client, kind, path, prefix=prefix)
    if n is not None:
        vs = [v for v in vs if v["n"] == n]
    if not vs:
        what = "saved version" if n is None else f"version {n}"
        raise NotFound(what, path, f"no {what} of {as_path(path)} in the history")
    return vs[-1]
