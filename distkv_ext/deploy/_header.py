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
from dataclasses import dataclass, field

from distkv_ext.code import MODES, mode_fields
from distkv_ext.codekit.core.checks import identifier, module_name, one_line, storable_problems
from distkv_ext.codekit.core.errors import InputRefused

from ._yaml import LineOf, load

__all__ = ["Header", "read_header", "procedure_fields", "module_fields", "first_line", "PROC_KEYS", "MODULE_KEYS"]

PROC_KEYS = ("mode", "vars", "default", "requires", "info")
MODULE_KEYS = ("requires", "info")

_START = "# distkv:"


def first_line(exc):
    """The first line of a (YAML parser's) exception, for a one-line problem."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Header:
    """A file's settings header: the settings (a dict; empty without a
    header), ``problems`` (one-line messages, naming file and line), and
    ``line(*keys)``, the file's line of a setting."""

    filename: str
    settings: dict = field(default_factory=dict)
    found: list = field(default_factory=list)  # (line, message)
    line: LineOf = lambda *keys: 1

    def problem(self, keys, msg):
        """Add ``msg`` about the setting at ``keys`` (a tuple) as a problem."""
        self.found.append((self.line(*keys), msg))

    @property
    def problems(self):
        """The problems, in the order of their lines: ``FILE:LINE: message``."""
        return [f"{self.filename}:{n}: {msg}" for n, msg in sorted(self.found, key=lambda p: p[0])]


def read_header(text, filename, keys):
    """The `Header` of ``text`` (a file's contents).

    Raises `InputRefused` (naming ``filename`` and the line) when the
    header is not first, not YAML or not a mapping: nothing more can be
    read from it then.  Unknown settings are ``problems`` of the header.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or lines[i].rstrip() != _START:
        if any(ln.rstrip() == _START for ln in lines[i:]):
            j = next(n for n, ln in enumerate(lines) if ln.rstrip() == _START)
            raise InputRefused(f"{filename}:{j + 1}: the '# distkv:' header must come first")
        return Header(filename)
    body = []
    j = i + 1
    while j < len(lines) and lines[j].startswith("#  "):
        body.append(lines[j][1:])
        j += 1
    if not body:
        return Header(filename)
    meta, line = load(textwrap.dedent("\n".join(body)), filename, offset=i + 1)
    if meta is None:
        return Header(filename)
    if not isinstance(meta, dict):
        raise InputRefused(f"{filename}:{i + 1}: the header must be a mapping (key: value lines)")
    header = Header(filename, line=line)
    for k in list(meta):
        if k not in keys:
            header.problem((k,), f"unknown header setting {k} (known: {', '.join(keys)})")
            del meta[k]
    header.settings = dict(meta)
    return header


def _names_list(header, key, check, what):
    """A setting that is one name or a list of names, each checked."""
    value = header.settings.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        header.problem((key,), f"{key} must be a list of {what}s, not {value!r}")
        return []
    res = []
    for n, v in enumerate(value):
        try:
            res.append(check(v))
        except InputRefused as exc:
            header.problem((key, n), f"{key}: {exc}")
    return res


def _info(header):
    info = header.settings.get("info")
    if info is None:
        return None
    try:
        return one_line(info, "info")
    except InputRefused as exc:
        header.problem(("info",), str(exc))
        return None


def module_fields(header):
    """Header settings -> keyword arguments of `module_value` (requires,
    info); every problem is added to ``header.problems``."""
    return dict(requires=_names_list(header, "requires", module_name, "module name"), info=_info(header))


def procedure_fields(header):
    """Header settings -> keyword arguments of `procedure_value`; every
    problem is added to ``header.problems`` (a setting with a problem is
    left out, or for ``mode`` taken as async, so that the code can still
    be compiled and its problems listed too)."""
    meta = header.settings
    mode = meta.get("mode", "sync")
    if not isinstance(mode, str) or mode not in MODES:
        header.problem(("mode",), f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        mode = "async"  # the most permissive: await compiles
    variables = _names_list(header, "vars", identifier, "variable name")
    default = meta.get("default") or {}
    if not isinstance(default, dict):
        header.problem(("default",), "default must be a mapping of variable names to values")
        default = {}
    defaults = {}
    for k, v in default.items():
        try:
            identifier(k)
        except InputRefused as exc:
            header.problem(("default", k), f"default: {exc}")
            continue
        problems = storable_problems(v, f"default.{k}")
        for p in problems:
            header.problem(("default", k), p)
        if not problems:
            defaults[k] = v
    variables = variables + [k for k in defaults if k not in variables]
    return dict(
        **mode_fields(mode),
        variables=variables,
        requires=_names_list(header, "requires", module_name, "module name"),
        info=_info(header),
        default=defaults,
    )
