"""Content hashes of stored procedures and modules, and the pins of jobs.

* `content_hash`: SHA-256 over the canonical typed encoding (`canon`) of
  what a procedure or module runs: every field but the one-line ``info``
  and the signature.  The history shows it.
* `pin_hash`: what ``--pin`` stores in a runner entry: SHA-256 over the
  procedure *and* every stored module it needs, transitively (its
  ``requires``, the stored modules it imports, theirs, and the stored
  packages above them), each with its name.  A changed module changes the
  pin as a changed procedure does.
* `pin_matches`: does a stored pin fit the code as stored now?  Pins
  written before (16 hex digits, `legacy_hash`: a 64-bit hash of the
  procedure alone, over text that let a `Path` and its text collide) are
  still honoured.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .canon import canonical
from .depgraph import static_imports
from .values import plain

__all__ = [
    "content_hash",
    "pin_hash",
    "pin_matches",
    "needed_modules",
    "legacy_hash",
    "RUN_FIELDS",
    "LEGACY_PIN_LENGTH",
]

#: The fields of a stored entry that change what runs (by kind); ``info``
#: and the signature (``sig``) do not.
RUN_FIELDS: dict[str, tuple[str, ...]] = {
    "proc": ("code", "is_async", "vars", "requires", "default", "process"),
    "module": ("code", "requires"),
}
#: Fields added after hashes, pins and signatures were first written:
#: covered only when set (true), so that every earlier hash, pin and
#: signature stays valid, and setting one changes them all.
_LATER_FIELDS = frozenset({"process"})
#: Length of the pins written before SHA-256 pins (hex digits).
LEGACY_PIN_LENGTH = 16

_EMPTY: tuple[object, ...] = (None, (), [], {})


def run_fields(kind: str, value: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``[(field, value), ...]`` of what runs, in a fixed order; a field
    that is missing, None or empty counts as None (``is_async`` keeps
    False, which means "in a thread"); ``process`` is left out unless
    set (`_LATER_FIELDS`)."""
    res = []
    for f in RUN_FIELDS[kind]:
        v = value.get(f)
        if f in _LATER_FIELDS:
            if v is None or v is False:
                continue
        elif f != "is_async" and (v is None or (isinstance(v, (list, tuple, dict)) and not v)):
            v = None
        res.append((f, v))
    return res


def _kind_of(value: Mapping[str, Any]) -> str:
    # a procedure has is_async/vars/default; a module only code/requires
    return "proc" if any(k in value for k in ("is_async", "vars", "default")) else "module"


def content_hash(value: object, kind: str | None = None) -> str | None:
    """SHA-256 (64 hex digits) of what a stored procedure or module runs
    (see the module doc); None for a value that is no mapping.  ``kind``:
    "proc" or "module" (default: guessed from the fields)."""
    if not isinstance(value, dict):
        return None
    kind = kind or _kind_of(value)
    return hashlib.sha256(canonical(["distkv-code entry v1", kind, run_fields(kind, value)])).hexdigest()


def needed_modules(value: Mapping[str, Any], lookup: Callable[[str], Any]) -> dict[str, Any]:
    """{name: stored value or None} of every stored module that a procedure
    or module ``value`` needs, transitively: its ``requires`` (None when
    not stored), the stored modules it imports, and the stored packages
    above each of them.  ``lookup(name)`` returns a module's stored value
    (a mapping) or None."""
    res: dict[str, Any] = {}
    todo = list(_needs(value, lookup))
    while todo:
        name = todo.pop()
        if name in res:
            continue
        mod = lookup(name)
        res[name] = mod if isinstance(mod, dict) else None
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent not in res and isinstance(lookup(parent), dict):
                todo.append(parent)
        if isinstance(mod, dict):
            todo.extend(_needs(mod, lookup))
    return res


def _needs(value: Mapping[str, Any], lookup: Callable[[str], Any]) -> Iterable[str]:
    req = value.get("requires") or ()
    names = {str(r) for r in req} if isinstance(req, (list, tuple)) else set()
    code = value.get("code")
    if isinstance(code, str):
        names |= {n for n in static_imports(code) if isinstance(lookup(n), dict)}
    return sorted(names)


def pin_hash(value: Mapping[str, Any], lookup: Callable[[str], Any]) -> str:
    """The pin of a procedure (SHA-256, 64 hex digits): the procedure and
    every stored module it needs (`needed_modules`), each by name; a module
    that is required but not stored counts as such."""
    mods = needed_modules(value, lookup)
    parts = [
        "distkv-code pin v1",
        run_fields("proc", value),
        [[name, None if mods[name] is None else run_fields("module", mods[name])] for name in sorted(mods)],
    ]
    return hashlib.sha256(canonical(parts)).hexdigest()


def pin_matches(pin: object, value: Mapping[str, Any], lookup: Callable[[str], Any]) -> bool:
    """Does ``pin`` (from a runner entry) fit the procedure ``value`` and
    its modules as stored now?  A 16-digit pin (written before SHA-256
    pins) is compared with `legacy_hash` of the procedure alone."""
    if not isinstance(pin, str):
        return False
    if len(pin) == LEGACY_PIN_LENGTH:
        return legacy_hash(value) == pin
    return pin_hash(value, lookup) == pin


def legacy_hash(value: object) -> str | None:
    """The pins of earlier releases: the first 64 bits of SHA-256 over
    ``json.dumps`` of every field but ``info`` (a `Path` hashed as its
    text).  Only for honouring pins already stored; never written."""
    if not isinstance(value, dict):
        return None
    key = {k: v for k, v in value.items() if k not in ("info", "sig")}
    text = json.dumps(plain(key), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:LEGACY_PIN_LENGTH]
