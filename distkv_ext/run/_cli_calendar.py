"""The calendar options of ``distkv client run set`` (`calendar_options`)
and what they change in the runner entry (`calendar_edit`)."""

from collections.abc import Callable, Mapping
from typing import Any

import asyncclick as click

from distkv_ext.codekit.cli.params import Checked
from distkv_ext.codekit.core.whenchecks import (
    CATCH_UP_POLICIES,
    OVERLAP_POLICIES,
    cron_expr,
    local_zone,
    location,
    seconds,
    sun_time,
    time_zone,
)

__all__ = ["calendar_options", "calendar_edit"]

#: the entry's fields that only a calendar job has
_CALENDAR = ("cron", "at", "tz", "location", "jitter", "overlap", "catch_up", "catch_up_window")


def _or_empty(check: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda text: "" if text == "" else check(text)


def _duration() -> Callable[[str], Any]:
    return lambda text: seconds(text, "value", maximum=366 * 86400)


def calendar_options(fn):  # untyped, as click's option types (Checked) are
    """``--cron``, ``--at``, ``--tz``, ``--location``, ``--jitter``,
    ``--overlap``, ``--catch-up``, ``--catch-up-window``: passed to the
    command as the keyword arguments of the same names."""
    opts = [
        click.option(
            "--cron",
            type=Checked(_or_empty(cron_expr), "EXPR"),
            help="Start by this cron expression: 5 fields, or 6 with seconds last ('30 6 * * 1-5'); '' removes the calendar.",
        ),
        click.option(
            "--at",
            "sun",
            type=Checked(_or_empty(lambda t: sun_time(t, "value")), "SUNTIME"),
            help="Start at a sun time: sunrise, sunset, dawn, dusk or noon, +/-OFFSET (sunset-15m); '' removes the calendar.",
        ),
        click.option(
            "--tz",
            type=Checked(lambda t: time_zone(t, "value"), "ZONE"),
            help="The calendar's time zone, an IANA name (default: runner.timezone, else this machine's zone).",
        ),
        click.option(
            "--location",
            type=Checked(lambda t: location(t, "value"), "LAT,LON"),
            help="Where the sun times are (default: runner.location {latitude, longitude}).",
        ),
        click.option(
            "--jitter",
            type=Checked(_duration(), "DURATION"),
            help="Delay each start by up to this long (15m), the same on every node.",
        ),
        click.option(
            "--overlap",
            type=click.Choice(OVERLAP_POLICIES),
            help="A start due while the last run still runs: skip it (default), queue it, or cancel the run.",
        ),
        click.option(
            "--catch-up",
            type=click.Choice(CATCH_UP_POLICIES),
            help="A start missed while the group was down: run it once (default) or not at all.",
        ),
        click.option(
            "--catch-up-window",
            type=Checked(_duration(), "DURATION"),
            help="How late a missed start may still run (default 1h).",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def calendar_edit(new: dict[str, Any], opts: Mapping[str, Any], runner_cfg: Any, *, timed: bool) -> None:
    """Apply the calendar options ``opts`` (of `calendar_options`) to the
    runner entry ``new``: ``--cron``/``--at`` make it a calendar job
    (dropping its target and repeat; its zone, if it has none:
    ``runner.timezone``, else this machine's; a sun time's place, if none:
    ``runner.location``); an empty ``--cron ''``/``--at ''`` removes the
    calendar.  ``timed``: -t or -r was given too (a usage error with a
    calendar)."""
    cron, sun = opts.get("cron"), opts.get("sun")
    if cron and sun:
        raise click.UsageError("give either --cron or --at, not both")
    if (cron or sun) and timed:
        raise click.UsageError("a calendar job (--cron, --at) has no -t/--time or -r/--repeat")
    cfg = runner_cfg if isinstance(runner_cfg, Mapping) else {}
    if cron == "" or sun == "":
        for k in _CALENDAR:
            new.pop(k, None)
    if cron or sun:
        new.pop("target", None)
        new.pop("repeat", None)
        new.pop("cron" if sun else "at", None)
        new["cron" if cron else "at"] = cron or sun
        if new.get("tz") is None:
            new["tz"] = time_zone(cfg["timezone"], "runner.timezone") if cfg.get("timezone") else local_zone()
        if sun and new.get("location") is None and cfg.get("location") is not None:
            new["location"] = location(cfg["location"], "runner.location")
    for opt, field in (
        ("tz", "tz"),
        ("location", "location"),
        ("jitter", "jitter"),
        ("overlap", "overlap"),
        ("catch_up", "catch_up"),
        ("catch_up_window", "catch_up_window"),
    ):
        if opts.get(opt) is not None:
            new[field] = opts[opt]
