"""The stored form of a procedure (DistKV 0.65's layout), and checking it."""

from distkv_ext.codekit.core.checks import check_storable, identifier, mapping, module_name, name_list, one_line
from distkv_ext.codekit.core.compiler import compile_procedure
from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.paths import normalize_requires

__all__ = ["procedure_value", "check_stored", "MODES", "mode_of"]

#: CLI names of the three ways code runs, and the stored ``is_async``.
MODES = {"sync": None, "thread": False, "async": True}


def mode_of(is_async):
    """The CLI name of an ``is_async`` value."""
    for k, v in MODES.items():
        if v is is_async:
            return k
    return repr(is_async)


def procedure_value(path, code, *, is_async=None, variables=(), requires=(), info=None, default=None):
    """Check and compile a procedure; return the dict to store.

    Raises `CompileError` or `InputRefused` (also for defaults that DistKV
    cannot store, see `checks.storable_problems`); nothing is written by this.
    """
    if info is not None:
        one_line(info, "info")
    if default is not None and not isinstance(default, dict):
        raise InputRefused("the defaults of variables must be a mapping")
    check_storable(default or {}, "default")
    proc = compile_procedure(code, path, variables=variables, is_async=is_async, defaults=default or {})
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


def check_stored(value):
    """Check the shape of a stored procedure (written by anyone, with any
    client) before it is compiled: a mapping with ``code``, ``default`` a
    mapping, ``vars`` a list of variable names, ``requires`` a list of
    module names (each absent or null, or so).  Raises `InputRefused`
    naming what is wrong (``'default' is list, not a mapping``); the
    compiler checks the rest (``code`` text, ``is_async``)."""
    mapping(value)
    if "code" not in value:
        raise InputRefused("stored value has no 'code'")
    if value.get("default") is not None:
        mapping(value["default"], "'default'")
    if value.get("vars") is not None:
        name_list(value["vars"], "'vars'", identifier)
    if value.get("requires") is not None:
        name_list(value["requires"], "'requires'", module_name)
