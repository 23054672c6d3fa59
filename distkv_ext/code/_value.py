"""The stored form of a procedure (DistKV 0.65's layout), and checking it."""

from moat.util import Path

from ..codekit.compiler import compile_procedure
from ..codekit.errors import InputRefused

__all__ = ["procedure_value", "normalize_requires", "MODES", "mode_of"]

#: CLI names of the three ways code runs, and the stored ``is_async``.
MODES = {"sync": None, "thread": False, "async": True}


def mode_of(is_async):
    """The CLI name of an ``is_async`` value."""
    for k, v in MODES.items():
        if v is is_async:
            return k
    return repr(is_async)


def normalize_requires(requires):
    """Return ``requires`` as a list of dotted module names."""
    if isinstance(requires, (str, Path)):
        requires = [requires]
    res = []
    for r in requires or ():
        if isinstance(r, Path):
            r = ".".join(str(x) for x in r)
        elif isinstance(r, (tuple, list)):
            r = ".".join(str(x) for x in r)
        if not isinstance(r, str) or not all(p.isidentifier() for p in r.split(".")):
            raise InputRefused(f"{r!r} is not a module name (like util.pid)")
        if r not in res:
            res.append(r)
    return res


def procedure_value(
    path, code, *, is_async=None, variables=(), requires=(), info=None, default=None
):
    """Check and compile a procedure; return the dict to store.

    Raises `CompileError` or `InputRefused`; nothing is written by this.
    """
    if info is not None and not isinstance(info, str):
        raise InputRefused("info must be one line of text")
    if info is not None and "\n" in info:
        raise InputRefused("info must be one line of text")
    proc = compile_procedure(
        code, path, variables=variables, is_async=is_async, defaults=default or {}
    )
    value = dict(
        code=code,
        is_async=is_async,
        vars=list(proc.variables),
        requires=normalize_requires(requires),
    )
    if default:
        value["default"] = dict(default)
    if info is not None:
        value["info"] = info
    return value
