"""What a pause says: `pause_value` (what ``run pause`` stores),
`pause_reason` (a stored pause in words) and `pause_of` (which pause, if
any, holds a job).

A pause lives apart from the job's definition and from its state
(`_layout.PAUSE_PREFIX`, `pause_path`): the operator writes it, runners
only read it.  Any value other than None at a job's pause path, or at a
path above it (the group's own path: a group pause), pauses the job; the
fields ``by``, ``at`` and ``reason`` only describe it.  A value written
behind our back (a number, a list, a mapping with fields of the wrong
type) still pauses: the description says "?" where it cannot be read.
"""

import datetime
import getpass
import socket
import time
from collections.abc import Mapping
from typing import Any

from moat.util import NotGiven

from distkv_ext.codekit.core.checks import one_line

from ._entry import is_time

__all__ = ["pause_value", "pause_reason", "pause_of", "is_paused", "operator", "RESUME_HINT"]

#: How the reason of a paused job ends (``run why``, the runner's state).
RESUME_HINT = "`run resume` to go on"

#: Longest text of a stored ``by`` or ``reason`` shown.
_MAX_TEXT = 200


def operator() -> str:
    """Who acts: ``USER@HOST`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no such user in the password database (containers)
        user = "?"
    return f"{user}@{socket.gethostname()}"


def pause_value(by: str | None = None, reason: str | None = None, now: float | None = None) -> dict[str, Any]:
    """The value ``run pause`` stores: {by, at[, reason]}; ``by``
    defaults to `operator`, ``now`` to this machine's clock.  `InputRefused`
    for a reason of more than one line."""
    value: dict[str, Any] = {"by": by or operator(), "at": time.time() if now is None else now}
    if reason:
        value["reason"] = one_line(reason, "reason")
    return value


def is_paused(value: Any) -> bool:
    """Does a stored pause value pause (anything but None / no value)?"""
    return value is not None and value is not NotGiven


def _text(v: Any) -> str | None:
    if not isinstance(v, str) or not v.strip():
        return None
    line = " ".join(v.split())
    return line if len(line) <= _MAX_TEXT else line[: _MAX_TEXT - 1] + "…"


def _when(v: Any) -> str | None:
    if not is_time(v):
        return None
    try:
        return datetime.datetime.fromtimestamp(v).astimezone().isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return None


def pause_reason(value: Any, group: bool = False) -> str:
    """A stored pause in words: ``paused by USER@HOST at TIME (REASON);
    `run resume` to go on`` (``group``: the group is paused).  Whatever
    the value holds: a field that cannot be read shows as "?" or is left
    out."""
    fields = value if isinstance(value, Mapping) else {}
    by = _text(fields.get("by")) or "?"
    text = f"paused{' with its group' if group else ''} by {by}"
    at = _when(fields.get("at"))
    if at:
        text += f" at {at}"
    why = _text(fields.get("reason"))
    if why:
        text += f" ({why})"
    return f"{text}; {RESUME_HINT}"


def pause_of(pauses: Mapping[tuple[Any, ...], Any], job: tuple[Any, ...]) -> str | None:
    """The pause that holds the job at ``job`` in words (`pause_reason`),
    or None.  ``pauses``: {path: stored value} of the pause subtree of the
    job's group (paths relative to the group, ``()``: the group's own);
    the job's own pause wins over one above it."""
    for n in range(len(job), -1, -1):
        value = pauses.get(tuple(job[:n]), NotGiven)
        if is_paused(value):
            return pause_reason(value, group=n == 0)
    return None
