"""Checks of the calendar and placement settings of a job, before they
are written: durations as text (``15m``), cron expressions, time zones,
sun times (``sunset-15m``), locations, tags, concurrency limits, and the
few words a setting may take (``--overlap skip``).

The companion of `checks` (same rules: each check raises `InputRefused`
with a one-line message naming the value, and returns the value to
store); kept apart because it needs croniter and zoneinfo.  What the
values mean is `distkv_ext.run`'s (``run/_calendar.py``).
"""

import os
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from croniter import croniter

from .checks import _show, duration, number, type_name
from .errors import InputRefused

__all__ = [
    "SUN_EVENTS",
    "OVERLAP_POLICIES",
    "CATCH_UP_POLICIES",
    "MAX_OFFSET",
    "parse_duration",
    "seconds",
    "cron_expr",
    "time_zone",
    "local_zone",
    "sun_time",
    "split_sun_time",
    "location",
    "tag",
    "tag_list",
    "limit_name",
    "limit_map",
    "parse_limit",
    "word",
]

#: The sun's events a job may start at (astral's names).
SUN_EVENTS = ("sunrise", "sunset", "dawn", "dusk", "noon")
#: What happens to a start that is due while the previous run still runs.
OVERLAP_POLICIES = ("skip", "queue", "cancel")
#: What happens to calendar starts missed while no runner of the group ran.
CATCH_UP_POLICIES = ("none", "once")
#: The largest offset from a sun event: 12 hours.
MAX_OFFSET = 12 * 3600

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}(=[A-Za-z0-9_.:/@+-]{0,64})?")
_LIMIT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def parse_duration(text: str, what: str, **limits: Any) -> float:
    """Seconds from text: a number (``90``, ``1.5``) or amounts with units
    ``s m h d w`` (``15m``, ``1h30m``, ``2d``); checked by `duration`
    with ``limits``.  Else `InputRefused` naming ``what``."""
    if not isinstance(text, str):
        raise InputRefused(f"{what} must be a duration like 15m, not {type_name(text)}")
    t = text.strip().lower()
    try:
        return duration(float(t), what, **limits)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(t):
        if t[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or t[pos:].strip():
        raise InputRefused(f"{what} must be a duration like 90, 15m or 1h30m, not {text!r}")
    return duration(total, what, **limits)


def seconds(value: Any, what: str, **limits: Any) -> int | float:
    """A duration as stored: a number, or text that `parse_duration`
    reads; whole numbers as int."""
    v = parse_duration(value, what, **limits) if isinstance(value, str) else duration(value, what, **limits)
    return int(v) if v == int(v) else v


def cron_expr(value: Any, what: str = "cron") -> str:
    """A cron expression that croniter accepts: 5 fields (minute hour day
    month weekday), or 6 with seconds last; returned with single spaces.
    Else `InputRefused`."""
    if not isinstance(value, str) or "\n" in value:
        raise InputRefused(f"{what} must be a cron expression like '30 6 * * 1-5', not {_show(value)}")
    text = " ".join(value.split())
    n = len(text.split(" "))
    if n not in (5, 6):
        raise InputRefused(
            f"{what} {value!r} has {n} fields; cron takes 5 (minute hour day month weekday) or 6 (+seconds)"
        )
    try:
        ok = croniter.is_valid(text)
    except Exception:  # croniter raises more than its documented errors on junk
        ok = False
    if not ok:
        raise InputRefused(f"{what} {value!r} is not a valid cron expression (like '30 6 * * 1-5')")
    return text


def time_zone(value: Any, what: str = "time zone") -> str:
    """An IANA time zone name that zoneinfo knows (``Europe/Berlin``,
    ``UTC``).  Else `InputRefused`."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise InputRefused(f"{what} must be an IANA zone name like Europe/Berlin, not {_show(value)}")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InputRefused(f"unknown {what} {value!r} (an IANA name like Europe/Berlin)") from None
    return value


def local_zone() -> str:
    """This machine's time zone as an IANA name: ``$TZ`` if it names one,
    else where ``/etc/localtime`` points, else ``UTC``."""
    env = os.environ.get("TZ", "").lstrip(":")
    candidates = [env] if env else []
    try:
        link = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        with open("/etc/timezone", encoding="utf-8") as f:
            candidates.append(f.read().strip())
    except OSError:
        pass
    for c in candidates:
        try:
            return time_zone(c)
        except InputRefused:
            continue
    return "UTC"


def split_sun_time(value: Any, what: str = "sun time") -> tuple[str, float]:
    """``sunset-15m`` -> (``"sunset"``, -900.0): a sun event of
    `SUN_EVENTS` and an offset in seconds (at most 12 hours either way).
    Else `InputRefused`."""
    if not isinstance(value, str):
        raise InputRefused(f"{what} must be like sunset or sunrise+30m, not {_show(value)}")
    text = value.strip().lower()
    m = re.fullmatch(r"([a-z]+)\s*(?:([+-])\s*(.+))?", text)
    if not m or m.group(1) not in SUN_EVENTS:
        raise InputRefused(f"{what} {value!r}: say {', '.join(SUN_EVENTS)}, optionally with +/-OFFSET (sunset-15m)")
    offset = 0.0
    if m.group(2):
        offset = parse_duration(m.group(3), f"the offset of {what} {value!r}", maximum=MAX_OFFSET)
        if m.group(2) == "-":
            offset = -offset
    return m.group(1), offset


def sun_time(value: Any, what: str = "sun time") -> str:
    """A sun time as stored: ``sunset``, ``sunset-900`` (offset in whole
    or decimal seconds, sign always given)."""
    event, offset = split_sun_time(value, what)
    if not offset:
        return event
    return f"{event}{offset:+g}"


def location(value: Any, what: str = "location") -> list[float]:
    """A place on earth as ``[latitude, longitude]`` in degrees: from a
    list or tuple of two numbers, a mapping with ``latitude`` and
    ``longitude``, or text ``LAT,LON``.  Else `InputRefused`."""
    if isinstance(value, Mapping):
        value = [value.get("latitude"), value.get("longitude")]
    elif isinstance(value, str):
        value = value.split(",")
        try:
            value = [float(v) for v in value]
        except ValueError:
            raise InputRefused(f"{what} must be LATITUDE,LONGITUDE in degrees (like 52.5,13.4)") from None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InputRefused(f"{what} must be latitude and longitude in degrees (like 52.5,13.4)")
    lat = number(value[0], f"the latitude of {what}", minimum=-90, maximum=90)
    lon = number(value[1], f"the longitude of {what}", minimum=-180, maximum=180)
    return [float(lat), float(lon)]


def tag(value: Any, what: str = "tag") -> str:
    """A runner tag: ``relay`` or ``room=kitchen`` (letters, digits and
    ``_ . : / -``; a value after ``=`` may also hold ``@ +``; at most 64
    characters each side).  Else `InputRefused`."""
    if not isinstance(value, str) or not _TAG.fullmatch(value):
        raise InputRefused(f"{_show(value)} is no {what} (like relay or room=kitchen)")
    return value


def tag_list(value: Any, what: str = "tags") -> list[str]:
    """A list of tags (`tag`), without repeats, in the given order; at
    most 64.  Else `InputRefused`."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InputRefused(f"{what} is {type_name(value)}, not a list of tags")
    if len(value) > 64:
        raise InputRefused(f"{what}: at most 64 tags, not {len(value)}")
    out: list[str] = []
    for v in value:
        t = tag(v)
        if t not in out:
            out.append(t)
    return out


def limit_name(value: Any) -> str:
    """The name of a concurrency limit (letters, digits, ``_ . -``; at
    most 64).  Else `InputRefused`."""
    if not isinstance(value, str) or not _LIMIT.fullmatch(value):
        raise InputRefused(f"{_show(value)} is no limit name (like backup or sensor-bus)")
    return value


def limit_map(value: Any, what: str = "limits") -> dict[str, int]:
    """Concurrency limits as stored: {NAME: N}, N a whole number from 1 to
    10000; at most 16 limits.  Else `InputRefused`."""
    if not isinstance(value, Mapping):
        raise InputRefused(f"{what} is {type_name(value)}, not a mapping of names to counts")
    if len(value) > 16:
        raise InputRefused(f"{what}: at most 16 limits, not {len(value)}")
    out: dict[str, int] = {}
    for k, v in value.items():
        n = number(v, f"limit {_show(k)}", minimum=1, maximum=10000, integer=True)
        out[limit_name(k)] = int(n)
    return out


def parse_limit(text: str) -> tuple[str, int]:
    """``NAME=N`` (an option's value) -> (NAME, N); else `InputRefused`."""
    name, eq, count = text.partition("=")
    if not eq:
        raise InputRefused(f"a limit is NAME=N (like backup=2), not {text!r}")
    try:
        n = int(count.strip())
    except ValueError:
        raise InputRefused(f"the count of limit {name!r} must be a whole number, not {count!r}") from None
    return limit_name(name.strip()), int(number(n, f"limit {name.strip()!r}", minimum=1, maximum=10000))


def word(value: Any, allowed: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``allowed``; else `InputRefused`."""
    if not isinstance(value, str) or value not in allowed:
        raise InputRefused(f"{what} must be one of {', '.join(allowed)}, not {_show(value)}")
    return value
