"""Comparing stored values with the values we would store.

DistKV's codec returns lists as tuples, and an entry written by another
tool may leave out a field that ours sets to ``None`` or an empty list:
both count as "the same" here, so that an unchanged entry is not
rewritten (``set`` prints "unchanged", ``deploy`` plans nothing).
"""

from collections.abc import Container
from typing import Any

__all__ = ["plain", "same_value"]

_EMPTY: tuple[object, ...] = (None, [], {})


def plain(x: Any) -> Any:
    """``x`` with tuples as lists, recursively (dicts keep their keys)."""
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


def same_value(old: Any, new: Any, keep_empty: Container[str] = ("is_async",)) -> bool:
    """Do the stored ``old`` and the new ``new`` (dicts) say the same?
    Values that are not both dicts are compared as `plain` data.

    A field that is missing, None, empty list or empty mapping on both
    sides is the same, except for the fields in ``keep_empty`` (where None
    means something: ``is_async`` None is "sync")."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        same: bool = plain(old) == plain(new)  # plain data: == gives a bool
        return same
    for k in set(old) | set(new):
        a, b = plain(old.get(k, None)), plain(new.get(k, None))
        if a in _EMPTY and b in _EMPTY and k not in keep_empty:
            continue
        if a != b:
            return False
    return True
