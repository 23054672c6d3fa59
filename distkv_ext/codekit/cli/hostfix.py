"""Repairs of DistKV 0.65's own command line, applied at plugin import.

DistKV 0.65.0 with moat-util 0.35 (the only set that installs working)
has these bugs, which make ``distkv client ...`` unusable as shipped:

1. ``distkv client`` cannot connect: ``distkv.command.client`` calls
   ``client_scope``, which needs an asyncscope main scope that nobody
   opens (``AttributeError: 'NoneType' object has no attribute
   'service'``).  Repaired by connecting with ``open_client`` (which
   opens the scope) as a resource of the ``client`` command's click
   context, so the connection closes when the command ends.
2. ``-C key=value`` is silently ignored (moat-util drops the result of
   ``attrdict._update``).  Repaired by applying the overrides to the
   configuration before connecting; ``-h``/``-p`` still win for the
   connection.
3. A failed connection that is not an ``OSError`` (time-out during the
   greeting) crashed with a traceback; it is now an ``OSError`` that the
   commands report as "cannot reach the server" (exit status 5).
4. ``distkv client --help`` listed an extension twice when it has a
   built-in's name; the listing is de-duplicated.
5. A loader looked up extension settings in ``ctx.obj`` eagerly, which
   crashes shell completion; it now falls back to "none".

Nothing installed is edited: the repairs patch names at run time, once
(`apply` is idempotent).  ``distkv_ext/client/main.py`` applies them to
every ``distkv client`` command, DistKV's own included; each of this
project's plugins applies them too, so they hold however it is loaded.
"""

import ast

__all__ = ["apply", "apply_overrides", "parse_override"]

_applied = False


def parse_override(item):
    """``"a.b=VALUE"`` -> (Path, value).  VALUE is a Python literal if it
    parses as one, else a string; without ``=`` the value is `NotGiven`
    (delete the key), as moat-util documents."""
    from moat.util import NotGiven, P

    if "=" not in item:
        return P(item), NotGiven
    k, v = item.split("=", 1)
    try:
        v = ast.literal_eval(v)
    except (ValueError, SyntaxError):
        pass
    return P(k), v


def apply_overrides(cfg, items):
    """Return ``cfg`` (an attrdict) with the ``-C`` overrides applied."""
    for item in items:
        k, v = parse_override(item)
        cfg = cfg._update(k, v)  # pylint: disable=protected-access
    return cfg


def _conn_error(exc):
    host_port = " ".join(str(a) for a in getattr(exc, "args", ()))
    return ConnectionError(f"cannot connect to the DistKV server {host_port}".rstrip())


async def _client_scope(_name=None, **cfg):
    """Replacement for ``distkv.client.client_scope`` inside ``distkv client``."""
    import asyncclick as click
    from distkv.client import open_client
    from distkv.exceptions import DistKVError
    from moat.util import attrdict

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


def _patch_loader():
    from moat.util import main as mmain

    Loader = mmain.Loader
    orig_list = Loader.list_commands

    def list_commands(self, ctx):
        return sorted(set(orig_list(self, ctx)))

    def get_sub_ext(self, ctx):
        obj = ctx.obj

        def pick(name):
            if hasattr(self, name):
                return getattr(self, name)
            return getattr(obj, name, None)

        sub_pre, sub_post = pick("_util_sub_pre"), pick("_util_sub_post")
        ext_pre, ext_post = pick("_util_ext_pre"), pick("_util_ext_post")
        if sub_pre is None:
            sub_post = None
        elif sub_post is None:
            sub_pre = ("cli",)
        elif isinstance(sub_post, str):
            sub_post = sub_post.split(".")
        if ext_pre is None:
            ext_post = None
        elif ext_post is None:
            ext_pre = None
        elif isinstance(ext_post, str):
            ext_post = ext_post.split(".")
            if len(ext_post) == 1:
                ext_post.append("cli")
        return sub_pre, sub_post, ext_pre, ext_post

    Loader.list_commands = list_commands
    Loader.get_sub_ext = get_sub_ext


def apply():
    """Apply the repairs (once; later calls do nothing)."""
    global _applied
    if _applied:
        return
    import distkv.command.client as dcc

    from ..store import quiet_connect_errors

    dcc.client_scope = _client_scope
    quiet_connect_errors()
    _patch_loader()
    _applied = True
