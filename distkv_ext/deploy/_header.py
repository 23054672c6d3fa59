"""The settings header of a procedure or module file in a deploy directory.

A file may start (after blank lines) with a comment block::

    # distkv:
    #   mode: async
    #   vars: [pump]
    #   default: {setpoint: 21.5}
    #   requires: [util.pid]
    #   info: Drive the boiler pump

The block is the line ``# distkv:`` and every following line that starts
with ``#`` and at least two spaces; the text after the ``#`` is YAML.
The header stays in the stored code (it is a comment), so line numbers in
tracebacks are the file's and ``code get`` shows where settings came from.
"""

import textwrap

from moat.util import yload

from distkv_ext.code import MODES
from distkv_ext.codekit.core.errors import InputRefused

__all__ = ["read_header", "procedure_fields", "first_line", "PROC_KEYS", "MODULE_KEYS"]

PROC_KEYS = ("mode", "vars", "default", "requires", "info")
MODULE_KEYS = ("requires", "info")

_START = "# distkv:"


def first_line(exc):
    """The first line of a (YAML parser's) exception, for a one-line problem."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def read_header(text, filename, keys):
    """The settings of ``text``'s header as a dict (empty without one).

    Raises `InputRefused` (naming ``filename`` and the line) when the
    header is not YAML, not a mapping, or has keys other than ``keys``.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or lines[i].rstrip() != _START:
        if any(ln.rstrip() == _START for ln in lines[i:]):
            j = next(n for n, ln in enumerate(lines) if ln.rstrip() == _START)
            raise InputRefused(f"{filename}:{j + 1}: the '# distkv:' header must come first")
        return {}
    body = []
    j = i + 1
    while j < len(lines) and lines[j].startswith("#  "):
        body.append(lines[j][1:])
        j += 1
    try:
        meta = yload(textwrap.dedent("\n".join(body))) if body else None
    except Exception as exc:  # ruyaml's errors have no common base worth naming
        raise InputRefused(f"{filename}:{i + 1}: the header is not YAML: {first_line(exc)}") from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise InputRefused(f"{filename}:{i + 1}: the header must be a mapping (key: value lines)")
    unknown = [str(k) for k in meta if k not in keys]
    if unknown:
        raise InputRefused(
            f"{filename}:{i + 1}: unknown header setting {', '.join(sorted(unknown))} (known: {', '.join(keys)})"
        )
    return dict(meta)


def procedure_fields(meta, filename):
    """Header settings -> keyword arguments of `procedure_value`."""
    mode = meta.get("mode", "sync")
    if mode not in MODES:
        raise InputRefused(f"{filename}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    variables = meta.get("vars") or []
    if isinstance(variables, str):
        variables = [variables]
    if not isinstance(variables, (list, tuple)) or not all(isinstance(v, str) for v in variables):
        raise InputRefused(f"{filename}: vars must be a list of variable names")
    default = meta.get("default") or {}
    if not isinstance(default, dict):
        raise InputRefused(f"{filename}: default must be a mapping of variable names to values")
    variables = list(variables) + [str(k) for k in default if k not in variables]
    return dict(
        is_async=MODES[mode],
        variables=variables,
        requires=meta.get("requires") or [],
        info=meta.get("info"),
        default={str(k): v for k, v in default.items()},
    )
