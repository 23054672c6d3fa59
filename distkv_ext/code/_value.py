"""The stored form of a procedure (DistKV 0.65's layout), and checking it."""

from distkv_ext.codekit.core.checks import check_storable, identifier, mapping, module_name, name_list, one_line
from distkv_ext.codekit.core.compiler import compile_procedure
from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.paths import normalize_requires

__all__ = ["procedure_value", "check_stored", "MODES", "mode_of", "mode_fields", "is_process"]

#: CLI names of the ways code runs: (stored ``is_async``, stored ``process``).
#: ``process``: the runner runs the code in a child process of its own
#: (see `distkv_ext.run`); DistKV 0.65's runner, which ignores the field,
#: runs such code as sync (or async) code, as it always did.
MODES = {
    "sync": (None, False),
    "thread": (False, False),
    "async": (True, False),
    "process": (None, True),
    "process-async": (True, True),
}

#: The stored field that asks for process mode (absent: not).
PROCESS_FIELD = "process"


def mode_fields(name):
    """The keyword arguments of `procedure_value` (``is_async``,
    ``process``) of the mode called ``name`` (a key of `MODES`)."""
    is_async, process = MODES[name]
    return {"is_async": is_async, "process": process}


def is_process(value):
    """Does the stored procedure ``value`` ask for process mode?  The one
    place that reads it (a mapping; anything but ``true`` means no)."""
    return isinstance(value, dict) and value.get(PROCESS_FIELD) is True


def mode_of(value):
    """The CLI name of the mode of a stored procedure ``value``."""
    is_async = value.get("is_async", None) if isinstance(value, dict) else None
    process = is_process(value)
    for k, v in MODES.items():
        if v[0] is is_async and v[1] is process:
            return k
    return repr(is_async)


def procedure_value(path, code, *, is_async=None, variables=(), requires=(), info=None, default=None, process=False):
    """Check and compile a procedure; return the dict to store.

    ``process``: run it in a child process (sync or async code, not
    thread code).  Raises `CompileError` or `InputRefused` (also for
    defaults that DistKV cannot store, see `checks.storable_problems`);
    nothing is written by this.
    """
    if info is not None:
        one_line(info, "info")
    if process not in (True, False, None):
        raise InputRefused(f"process must be true or false, not {process!r}")
    if process and is_async is False:
        raise InputRefused("process mode runs sync or async code, not thread code")
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
    if process:
        value[PROCESS_FIELD] = True
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
    if value.get(PROCESS_FIELD) not in (None, True, False):
        raise InputRefused(f"'{PROCESS_FIELD}' must be true or false, not {value[PROCESS_FIELD]!r}")
    if value.get(PROCESS_FIELD) is True and value.get("is_async", None) is False:
        raise InputRefused("process mode runs sync or async code, not thread code")
