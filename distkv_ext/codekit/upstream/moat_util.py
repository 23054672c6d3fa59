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
5. A ``-c FILE`` that is not YAML, not a mapping, a directory or
   unreadable crashed ``distkv`` with a traceback (ruyaml's, or an
   ``AttributeError`` later), and an unreadable one was silently ignored
   (moat-util drops ``PermissionError``).  `repair_config_file` makes each
   one line, ``Error: cannot use the configuration FILE: ...``, and exit
   status 2 (a usage error: the command line named a bad file); so is a
   file that does not exist (click's check said so in a usage block).

   moat-util reads ``-c`` in the ``distkv`` group's own callback, before
   it loads any subcommand, so no plugin code has run yet: the repair is
   applied when the ``distkv`` command starts, by ``distkv_code.pth``
   (installed in site-packages with this package; it imports `boot` in
   ``distkv`` processes only), and by `apply_client` and `apply_server`
   for everything that runs moat-util's main later.

This module touches click because what it repairs is moat-util's click
command (as `distkv` does for DistKV's).
"""

import ast
import types

import asyncclick as click  # moat-util's CLI is what this repairs
from asyncscope import main_scope
from moat.util import NotGiven, P
from moat.util import main as mmain
from ruyaml.error import MarkedYAMLError, YAMLError

__all__ = [
    "apply",
    "apply_overrides",
    "parse_override",
    "repair_main_scope",
    "repair_config_file",
    "BadConfigFile",
    "PACKAGE",
    "TARGET",
]

PACKAGE = "moat-util"
#: The release this repair was written for (see `distkv_ext.codekit.upstream`).
TARGET = "0.35.0"

_applied = False
_main_repaired = False
_config_repaired = False


class BadConfigFile(click.ClickException):
    """The ``-c`` configuration file cannot be used: one line, exit status 2."""

    exit_code = 2

    def __init__(self, path, why):
        super().__init__(f"cannot use the configuration {path}: {why}")


def _read_config(path):
    """Read a ``-c`` file as moat-util does; every failure is `BadConfigFile`."""
    try:
        with open(path, encoding="utf-8") as f:
            cfg = mmain.yload(f, attr=True)
    except IsADirectoryError:
        raise BadConfigFile(path, "it is a directory") from None
    except OSError as exc:
        raise BadConfigFile(path, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise BadConfigFile(path, "not UTF-8 text") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise BadConfigFile(path, f"{where}not YAML: {exc.problem or exc.context}") from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise BadConfigFile(path, f"not YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise BadConfigFile(path, f"must be a mapping of settings (key: value), not a {type(cfg).__name__}")
    return cfg


def repair_config_file():
    """Make a bad ``-c FILE`` one line and exit status 2 (see the module
    doc, 5); the default files (``~/.config/distkv.cfg``, ...) are read as
    before (once)."""
    global _config_repaired
    if _config_repaired:
        return
    orig = mmain.read_cfg

    def read_cfg(name, path):
        if name is not None and path is not None and path is not False:
            return _read_config(path)
        return orig(name, path)

    read_cfg.__doc__ = orig.__doc__
    mmain.read_cfg = read_cfg
    # click checked that the file exists, with a usage block around the
    # message: our reader says it in one line like the other failures
    for param in mmain.main_.params:
        if param.name == "cfg" and isinstance(param.type, click.Path):
            param.type = click.Path(dir_okay=True)
    _config_repaired = True


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
    """Repair the command loader and the reading of ``-c FILE`` (once)."""
    global _applied
    if _applied:
        return
    _patch_loader()
    repair_config_file()
    _applied = True
