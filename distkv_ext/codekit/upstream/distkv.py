"""Repairs of DistKV 0.65.0's command line (``distkv.command.client``).

1. ``distkv client`` cannot connect: ``distkv.command.client`` calls
   ``client_scope``, which needs an asyncscope main scope that nobody
   opens (``AttributeError: 'NoneType' object has no attribute
   'service'``).  Repaired by connecting with ``open_client`` (which
   opens the scope) as a resource of the ``client`` command's click
   context, so the connection closes when the command ends.  The ``-C``
   overrides (see `moat_util`) are applied to the configuration before
   connecting; ``-h``/``-p`` still win for the connection.
2. A failed connection that is not an ``OSError`` (time-out during the
   greeting) crashed with a traceback; it is now an ``OSError`` that the
   commands report as "cannot reach the server" (exit status 5).
3. (Servers.)  A conditional write (``chain=...``, ``prev=...``) checks
   its condition *before* it takes the server's event lock, and writes
   after: two conditional writes of one entry that arrive together both
   pass and the second overwrites the first ("only if it does not exist
   yet" let two history records take one number, and one was lost).
   `apply_server` makes each server take conditional writes one at a
   time, so check and write are one step.  (Between servers DistKV 0.65
   still decides per server: two writers on two servers within the
   moment it takes to pass the write on can both win.)
4. ``distkv client acl get|set NAME PATH`` crash (``TypeError: can only
   concatenate tuple (not "Path") to tuple``): the command adds the path it
   parsed to a tuple.  Repaired by parsing it into a `Path` that a tuple
   can be added to (``acl`` only; ``acl test`` and ``list`` worked).

5. (Servers.)  A value that holds a nan kills the server that stores
   it: applying its own update, ``Entry.apply`` asserts that the value it
   has equals the new one, and nan is not equal to itself.  Any client
   with write access could stop a server with one write.  `apply_server`
   makes each server refuse such a value (the client gets an error
   naming where the nan is, and nothing is stored); infinities compare
   equal and are stored as before.

This module touches click because what it repairs is DistKV's click
command; `apply` is applied by `distkv_ext.codekit.upstream.apply_client`,
`apply_server` by `distkv_ext.codekit.upstream.apply_server`.
"""

import functools

import anyio
import asyncclick as click  # DistKV's CLI is what this repairs
import distkv.command.client as dcc
import distkv.command.client.acl as dacl
from distkv.client import open_client
from distkv.exceptions import ClientError, DistKVError
from moat.util import P, Path, attrdict

from .moat_util import apply_overrides

__all__ = ["apply", "apply_server", "PACKAGE", "TARGET"]

PACKAGE = "distkv"
#: The release this repair was written for (see `distkv_ext.codekit.upstream`).
TARGET = "0.65.0"

_applied = False
_server_applied = False


def _conn_error(exc):
    host_port = " ".join(str(a) for a in getattr(exc, "args", ()))
    return ConnectionError(f"cannot connect to the DistKV server {host_port}".rstrip())


async def _client_scope(_name=None, **cfg):
    """Replacement for ``distkv.client.client_scope`` inside ``distkv client``."""
    ctx = click.get_current_context()
    conf = ctx.find_root().params.get("conf") or ()
    if conf:
        cfg = apply_overrides(attrdict(cfg), conf)
        ctx.obj.cfg = apply_overrides(ctx.obj.cfg, conf)
        for k in ("host", "port"):
            if ctx.params.get(k) is not None:
                cfg["connect"][k] = ctx.params[k]
    conn = cfg.get("connect") or {}
    ctx.obj.code_server = f"{conn.get('host', 'localhost')}:{conn.get('port', '')}"
    try:
        return await ctx.with_async_resource(open_client(**cfg))
    except OSError:
        raise
    except (DistKVError, TimeoutError) as exc:
        raise _conn_error(exc) from exc


class _AclPath(Path):
    """A `Path` that a tuple can be added to (``("acl", name) + path``)."""

    def __radd__(self, other):
        if isinstance(other, tuple):
            return other + tuple(self)
        return NotImplemented


def _acl_path(text):
    return _AclPath(*P(text))


def apply():
    """Replace ``distkv.command.client.client_scope`` and the path parser
    of ``distkv client acl`` (once)."""
    global _applied
    if _applied:
        return
    dcc.client_scope = _client_scope
    dacl.P = _acl_path
    _applied = True


def _one_conditional_write_at_a_time(orig):
    @functools.wraps(orig)
    async def _set_value(self, msg, *a, **kw):
        if "chain" not in msg and "prev" not in msg:
            return await orig(self, msg, *a, **kw)
        server = self.server
        lock = server.__dict__.get("_distkv_code_cond_lock")
        if lock is None:
            lock = server.__dict__["_distkv_code_cond_lock"] = anyio.Lock()
        async with lock:  # never taken while holding the event lock: no deadlock
            return await orig(self, msg, *a, **kw)

    return _set_value


def nan_in(value: object, where: str = "value") -> str | None:
    """Where in ``value`` a nan is (``value.a[2]``), or None.  Iterative:
    any depth the codec allows."""
    todo = [(value, where)]
    while todo:
        v, w = todo.pop()
        if isinstance(v, float):
            if v != v:
                return w
        elif isinstance(v, dict):
            todo.extend((x, f"{w}.{k}") for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            todo.extend((x, f"{w}[{i}]") for i, x in enumerate(v))
    return None


def _refuse_nan(orig):
    @functools.wraps(orig)
    async def _set_value(self, msg, *a, **kw):
        value = kw["value"] if "value" in kw else a[0] if a else None
        where = nan_in(value)
        if where is not None:
            raise ClientError(f"{where} is nan: not stored (a nan is not equal to itself, which DistKV 0.65 requires)")
        return await orig(self, msg, *a, **kw)

    return _set_value


def apply_server():
    """Serialize each server's conditional writes and refuse values that
    hold a nan (see the module doc, 3 and 5; once).  For the servers this
    project runs, and DistKV's in-process test servers."""
    global _server_applied
    if _server_applied:
        return
    # only now: the server module (and its backends) is not needed by commands
    from distkv.server import ServerClient

    ServerClient._set_value = _refuse_nan(_one_conditional_write_at_a_time(ServerClient._set_value))
    _server_applied = True
