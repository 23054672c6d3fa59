"""Repairs of moat-util 0.35.0's command-line machinery (``moat.util.main``).

1. ``-C key=value`` is silently ignored (moat-util drops the result of
   ``attrdict._update``).  `apply_overrides` does what it should; the
   ``distkv client`` repair (`distkv`) and the server entry point use it.
2. ``distkv --help`` / ``distkv client --help`` listed an extension twice
   when it has a built-in's name; the listing is de-duplicated.
3. The loader looked up extension settings in ``ctx.obj`` eagerly, which
   crashes shell completion; it now falls back to "none".
4. ``moat.util.main`` runs the command without an asyncscope main scope,
   so a ``distkv server`` that joins a cluster crashes
   (`repair_main_scope`, for the server entry point only).
"""

import ast
import types

from asyncscope import main_scope
from moat.util import NotGiven, P
from moat.util import main as mmain

__all__ = ["apply", "apply_overrides", "parse_override", "repair_main_scope", "PACKAGE", "TARGET"]

PACKAGE = "moat-util"
#: The release this repair was written for (see `distkv_ext.codekit.upstream`).
TARGET = "0.35.0"

_applied = False
_main_repaired = False


def parse_override(item):
    """``"a.b=VALUE"`` -> (Path, value).  VALUE is a Python literal if it
    parses as one, else a string; without ``=`` the value is `NotGiven`
    (delete the key), as moat-util documents."""
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
        cfg = cfg._update(k, v)
    return cfg


def _patch_loader():
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


def repair_main_scope():
    """Run ``distkv`` commands inside an asyncscope main scope, and apply
    ``-C`` overrides to the configuration (once)."""
    global _main_repaired
    if _main_repaired:
        return
    main_ = mmain.main_

    async def _main(self, main, args, kwargs):
        async with main_scope("distkv"):
            return await main(*args, **kwargs)

    main_._main = types.MethodType(_main, main_)

    orig_wrap = mmain.wrap_main

    def wrap_main(*a, conf=(), ctx=None, **kw):
        res = orig_wrap(*a, conf=(), ctx=ctx, **kw)
        if conf and ctx is not None:
            ctx.obj.cfg = apply_overrides(ctx.obj.cfg, conf)
        return res

    mmain.wrap_main = wrap_main
    _main_repaired = True


def apply():
    """Repair the command loader (once)."""
    global _applied
    if _applied:
        return
    _patch_loader()
    _applied = True
