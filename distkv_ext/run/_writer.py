"""What the writer of a calendar job adds to it: its time zone and place.

Every runner of a group must compute the same start times, so a calendar
job stores the zone (and, for a sun time, the place) it was written for.
Where ``run set`` or a deploy does not name them, they come from the
writer's configuration (``runner: {timezone: ..., location: {latitude:
..., longitude: ...}}``), else the zone is the writer's own (`local_zone`).
"""

from collections.abc import Mapping
from typing import Any

from distkv_ext.codekit.core.errors import BadArguments, InputRefused
from distkv_ext.codekit.core.whenchecks import local_zone, location, time_zone

from ._layout import CALENDAR_FIELDS

__all__ = ["calendar_defaults", "with_calendar_defaults"]


def calendar_defaults(runner_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"tz": ZONE, "location": [LAT, LON] or None}`` from the ``runner:``
    settings (``timezone``, ``location``); the zone defaults to this
    machine's.  A bad setting raises `BadArguments` naming it."""
    cfg = runner_cfg or {}
    res: dict[str, Any] = {"tz": None, "location": None}
    try:
        tz = cfg.get("timezone")
        res["tz"] = local_zone() if tz is None else time_zone(tz, "runner.timezone")
        if cfg.get("location") is not None:
            res["location"] = location(cfg["location"], "runner.location")
    except InputRefused as exc:
        raise BadArguments(str(exc)) from None
    return res


def with_calendar_defaults(fields: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` of a job with the writer's zone and place filled in
    where a calendar job needs them and does not name them; other jobs
    unchanged."""
    res = dict(fields)
    if any(res.get(k) is not None for k in CALENDAR_FIELDS):
        if res.get("tz") is None:
            res["tz"] = defaults.get("tz")
        if res.get("at") is not None and res.get("location") is None and defaults.get("location") is not None:
            res["location"] = defaults["location"]
    return res
