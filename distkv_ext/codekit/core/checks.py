"""Checks made before anything is written: numbers, durations, times,
names, one-line texts, and whether a value can be stored as DistKV
stores it.

One place for every feature (``code``, ``module``, ``run``, ``deploy``)
and for the command line: a value that comes from an option, a file, a
settings header or a jobs file is checked here before the first write
of the operation.  Each check raises `InputRefused` (exit status 4)
with a one-line message that names the value (``what``); the command
line turns the same message into a usage error (exit status 2) when the
value came from an option.  `storable_problems` lists every problem of
a value at once.

**Storable** means: DistKV 0.65 can encode it (msgpack through
`distkv.codec.packer`, which is what the client sends and the servers
keep) and gets the same value back.  That excludes what a YAML file
easily produces by surprise: dates and timestamps, sets (``!!set``),
values that contain themselves (an alias inside its own anchor), and
numbers msgpack cannot carry (integers beyond 64 bits).  Stricter than
msgpack, on purpose: keys of mappings must be text (variables and
settings are named by them; YAML's ``1:`` or ``? [a]`` are typos), and
floats must be finite (``nan`` never compares equal, so an entry
holding one would never count as "unchanged").
"""

import datetime
import keyword
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from distkv.codec import packer
from moat.util import Path

from .errors import InputRefused

__all__ = [
    "MAX_SECONDS",
    "MAX_VALUE",
    "MAX_DEPTH",
    "number",
    "parse_number",
    "duration",
    "target_time",
    "one_line",
    "identifier",
    "module_name",
    "type_name",
    "mapping",
    "name_list",
    "storable_problems",
    "check_storable",
]

#: The longest duration or distance in time accepted: 100 years, in seconds.
MAX_SECONDS = 100 * 365.25 * 86400
#: The largest value (msgpack-encoded, in bytes) accepted for one entry:
#: a procedure's code may have 4 MiB (`source.MAX_SOURCE`), plus settings.
#: DistKV sends a value in one message; a few MB stall its servers.
MAX_VALUE = 4 * 1024 * 1024 + 256 * 1024
#: How deeply a stored value may nest lists and mappings.
MAX_DEPTH = 64

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what msgpack carries natively


def _show(value: Any) -> str:
    """A number or value as a message shows it: ``nan``, ``inf``, ``1e+300``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"{value:.3g}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number(
    value: Any,
    what: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: bool = False,
    integer: bool = False,
) -> float:
    """``value`` if it is a finite number (an int or float, never a bool)
    within ``minimum`` .. ``maximum`` (``above``: strictly more than
    ``minimum``); ``integer``: a whole number.  Returns it as it is (an
    int stays an int).  Anything else raises `InputRefused` naming
    ``what``: ``repeat must be a finite number, not nan``."""
    kind = "whole number" if integer else "number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputRefused(f"{what} must be a {kind}, not {_show(value)}")
    n: float = value
    if isinstance(n, float) and not math.isfinite(n):
        raise InputRefused(f"{what} must be a finite {kind}, not {_show(n)}")
    if integer and n != int(n):
        raise InputRefused(f"{what} must be a whole number, not {_show(n)}")
    if minimum is not None and (n < minimum or (above and n == minimum)):
        limit = f"more than {minimum:g}" if above else f"at least {minimum:g}"
        raise InputRefused(f"{what} must be {limit}, not {_show(n)}")
    if maximum is not None and n > maximum:
        raise InputRefused(f"{what} must be at most {_limit(maximum)}, not {_show(n)}")
    return n


def _limit(maximum: float) -> str:
    if maximum == MAX_SECONDS:
        return f"{maximum:.0f} (100 years)"
    return f"{maximum:g}"


def parse_number(text: str, what: str, **limits: Any) -> float:
    """A number written as text (an option's value: ``30``, ``1.5``,
    ``1e3``), checked by `number` with ``limits``.  ``nan``, ``inf`` and
    what is no number raise `InputRefused` naming ``what``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputRefused(f"{what} must be a number, not {text!r}") from None
    if limits.get("integer") and math.isfinite(value) and value == int(value):
        return number(int(value), what, **limits)
    return number(value, what, **limits)


def duration(
    value: Any, what: str, *, minimum: float = 0.0, above: bool = False, maximum: float = MAX_SECONDS
) -> float:
    """Seconds: a finite number from ``minimum`` (default 0) to ``maximum``
    (default 100 years); see `number`."""
    return number(value, what, minimum=minimum, above=above, maximum=maximum)


def target_time(value: Any, what: str = "target", *, now: float | None = None) -> float:
    """A start time (Unix time): 0 means "never"; any other value must be
    a finite number after 1970 and at most 100 years away from ``now``
    (default: the current time).  Returns it; else `InputRefused`."""
    t = number(value, what)
    if t == 0:
        return t
    if t < 0:
        raise InputRefused(f"{what} {_show(t)} is before 1970 (0 means never)")
    now = time.time() if now is None else now
    if abs(t - now) > MAX_SECONDS:
        raise InputRefused(f"{what} {_show(t)} is more than 100 years away")
    return t


def one_line(value: Any, what: str) -> str:
    """``value`` if it is one line of text; else `InputRefused`."""
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise InputRefused(f"{what} must be one line of text")
    return value


def identifier(name: Any, what: str = "variable") -> str:
    """``name`` if it can name a Python variable (an identifier that is no
    keyword); else `InputRefused` (``'a-b' cannot be a variable name``)."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise InputRefused(f"{_show(name)} cannot be a {what} name")
    return name


def module_name(name: Any) -> str:
    """The dotted module name of ``name`` (``"util.pid"``, a `Path` or a
    sequence of elements) if ``import NAME`` could find it: every part an
    identifier and no keyword.  Else `InputRefused`, naming the part."""
    if isinstance(name, (Path, tuple, list)):
        parts = list(name)
        text = ".".join(str(p) for p in parts)
    elif isinstance(name, str):
        text = name
        parts = name.split(".")
    else:
        raise InputRefused(f"{_show(name)} is not a module name (like util.pid)")
    for p in parts:
        if not isinstance(p, str) or not p.isidentifier() or keyword.iskeyword(p):
            raise InputRefused(f"{text!r} is not a module name: {str(p)!r} cannot be imported (like util.pid)")
    if not parts:
        raise InputRefused("a module needs a name (like util.pid)")
    return text


def type_name(value: Any) -> str:
    """What ``value`` is, as a message names it: ``list`` for a list or a
    tuple (DistKV hands a stored list back as a tuple), ``mapping``,
    ``null``, else the name of its type (``str``, ``int``, ``bytes``)."""
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return "null" if value is None else type(value).__name__


def mapping(value: Any, what: str = "stored value") -> Mapping[str, Any]:
    """``value`` if it is a mapping; else `InputRefused` (``'default' is
    list, not a mapping``).  For values read from the store, where anyone
    may have written anything."""
    if not isinstance(value, Mapping):
        raise InputRefused(f"{what} is {type_name(value)}, not a mapping")
    return value


def name_list(value: Any, what: str, check: Callable[[Any], str]) -> list[str]:
    """``value`` (a list or tuple) as a list of names, each passed through
    ``check`` (`identifier`, `module_name`); else `InputRefused`
    (``'requires' is str, not a list``, or what ``check`` says)."""
    if not isinstance(value, (list, tuple)):
        raise InputRefused(f"{what} is {type_name(value)}, not a list")
    return [check(v) for v in value]


def _where(base: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    if isinstance(key, str) and key.isidentifier():
        return f"{base}.{key}" if base else key
    return f"{base}[{key!r}]"


def _kind(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return f"a timestamp ({value.isoformat()}) cannot be stored; quote it to store it as text"
    if isinstance(value, datetime.date):
        return f"a date ({value.isoformat()}) cannot be stored; quote it to store it as text"
    if isinstance(value, (set, frozenset)):
        return "a set cannot be stored; use a list"
    if isinstance(value, complex):
        return f"a complex number ({value!r}) cannot be stored"
    return f"a {type(value).__name__} cannot be stored"


def storable_problems(value: Any, what: str = "value", *, max_bytes: int = MAX_VALUE) -> list[str]:
    """Every reason why DistKV could not store ``value`` as it is (see the
    module doc), each a line naming the place inside it (``data.when:
    a date (2020-01-01) cannot be stored; ...``); empty when it can.

    Accepted: None, bool, int (64 bits), finite float, str, bytes, a
    DistKV `Path`, lists and tuples of these, mappings with text keys;
    nested at most `MAX_DEPTH` deep; at most ``max_bytes`` encoded."""
    problems: list[str] = []
    active: set[int] = set()  # containers being walked: a value that contains itself

    def walk(v: Any, where: str, depth: int) -> None:
        if len(problems) >= 20:
            return
        if v is None or isinstance(v, (bool, str, bytes, Path)):
            return
        if isinstance(v, int):
            if not _INT_MIN <= v <= _INT_MAX:
                digits = len(str(abs(v)))
                problems.append(f"{where}: an integer of {digits} digits is too large to store (more than 64 bits)")
            return
        if isinstance(v, float):
            if not math.isfinite(v):
                problems.append(f"{where}: {_show(v)} is not a finite number")
            return
        if isinstance(v, (list, tuple, Mapping)):
            if id(v) in active:
                problems.append(f"{where}: contains itself (a YAML alias inside its own anchor?)")
                return
            if depth >= MAX_DEPTH:
                problems.append(f"{where}: nested more than {MAX_DEPTH} levels deep")
                return
            active.add(id(v))
            try:
                if isinstance(v, Mapping):
                    for k, x in v.items():
                        if not isinstance(k, str):
                            problems.append(f"{where}: key {_show(k)} is not text (keys must be strings)")
                            continue
                        walk(x, _where(where, k), depth + 1)
                else:
                    for i, x in enumerate(v):
                        walk(x, _where(where, i), depth + 1)
            finally:
                active.discard(id(v))
            return
        problems.append(f"{where}: {_kind(v)}")

    walk(value, what, 0)
    if problems:
        return problems
    try:
        size = len(packer(value))
    except Exception as exc:  # the codec's own verdict, whatever it raises
        return [f"{what}: cannot be stored: {exc or type(exc).__name__}"]
    if size > max_bytes:
        return [f"{what}: too large to store ({size} bytes encoded, at most {max_bytes})"]
    return []


def check_storable(value: Any, what: str = "value", *, max_bytes: int = MAX_VALUE) -> Any:
    """``value`` if DistKV can store it (see `storable_problems`); else
    `InputRefused` with the first problem (and how many more there are)."""
    problems = storable_problems(value, what, max_bytes=max_bytes)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputRefused(problems[0] + more)
    return value
