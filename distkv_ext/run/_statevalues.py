"""What a stored job state may hold: the type of each field a runner
reads, and reading a value written behind its back (`usable_state`);
whether one change chain is as new as another (`chain_covers`).  Pure."""

import logging
import math
from collections.abc import Mapping
from typing import Any

from distkv_ext.codekit.core.checks import type_name

logger = logging.getLogger(__name__)

__all__ = ["is_time", "usable_state", "chain_covers"]


def is_time(v: Any) -> bool:
    """Is ``v`` a stored time: a finite number (not a bool)?"""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63


def _text(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _names(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) <= 100 and all(isinstance(x, str) and len(x) <= 200 for x in v)


def _run_numbers(v: Any) -> bool:
    return v is None or (isinstance(v, (list, tuple)) and len(v) <= 1000 and all(_count(x) for x in v))


def _time_or_none(v: Any) -> bool:
    return v is None or is_time(v)


#: What each field of a state entry must be (others are not read)
_STATE_FIELDS = {
    "started": is_time,
    "stopped": is_time,
    "pinged": is_time,
    "computed": is_time,
    "node": _text,
    "last_node": _text,
    "reason": _text,
    "error": _text,
    "backoff": _count,
    "runs": _count,
    "resume": _flag,
    "waiting": _text,
    "stalls": _names,
    "quarantined": _text,
    "for_target": _time_or_none,
    "for_calendar": _text,
    "triggered": _text,
    "placement": _text,
    "skipped": _count,
    "skipped_slot": _time_or_none,
    "skip_note": _text,
    "queued": _time_or_none,
    "outputs": _run_numbers,
}


def usable_state(value: Any, where: object) -> dict[str, Any]:
    """``value``, a stored state entry (runners write them, but anyone
    can), without the fields of the wrong type (a ``started`` of
    ``"yesterday"`` or nan, a ``node`` of 5): they read as their defaults
    and the next run writes them anew.  A value that is no mapping reads
    as an empty state.  What is left out is logged (``where``: the entry)."""
    if not isinstance(value, Mapping):
        logger.warning("state %s is %s, not a mapping: ignored", where, type_name(value))
        return {}
    bad = [k for k, ok in _STATE_FIELDS.items() if k in value and not ok(value[k])]
    if bad:
        logger.warning("state %s: ignoring %s", where, ", ".join(f"{k}={value[k]!r}" for k in bad))
    return {k: v for k, v in value.items() if k not in bad}


def chain_covers(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> bool:
    """Is the change chain ``new`` the same as or later than ``old``?

    Walks ``new``'s ``prev`` links for ``old``'s server; if that server is
    not in the (shortened) chain, ``new`` is taken to be later.
    """
    if old is None:
        return True
    if new is None:
        return False
    node, tick = old.get("node"), old.get("tick", 0)
    c: Mapping[str, Any] | None = new
    while c is not None:
        if c.get("node") == node:
            return bool(c.get("tick", 0) >= tick)
        c = c.get("prev")
    return True
