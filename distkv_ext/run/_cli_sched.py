"""``run set``'s options for calendars, placement, limits and arguments.

`schedule_options` adds them to a command and hands the command one
mapping, ``schedule``; `apply_schedule` applies it to a job's fields,
the way ``run set`` applies its other options: what is not given keeps
its stored value.  The values are checked as the runner entry checks
them (`distkv_ext.codekit.core.whenchecks`): a bad one is a usage error
(exit status 2) naming the option.
"""

import functools
from collections.abc import Callable
from typing import Any

import asyncclick as click

from distkv_ext.codekit.cli.args import positional_values
from distkv_ext.codekit.cli.params import Checked
from distkv_ext.codekit.core.whenchecks import (
    CATCH_UP_POLICIES,
    OVERLAP_POLICIES,
    cron_expr,
    limit_name,
    location,
    parse_duration,
    parse_limit,
    sun_time,
    tag,
    time_zone,
)

from ._layout import CALENDAR_FIELDS, CALENDAR_ONLY
from ._writer import with_calendar_defaults

__all__ = ["schedule_options", "apply_schedule", "TAG"]

#: The option values `schedule_options` collects into ``schedule``.
_NAMES = (
    "cron",
    "at",
    "tz",
    "location",
    "jitter",
    "overlap",
    "catch_up",
    "catch_up_window",
    "require_tag",
    "prefer_tag",
    "limit",
    "arg",
    "literal",
    "no_args",
)

#: Everything that belongs to a calendar (dropped when a job goes back to
#: a start time and a repeat).
_CALENDAR = (*CALENDAR_FIELDS, *CALENDAR_ONLY, "tz", "location")


def _or_empty(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """``check``, but the empty text stays empty (it removes the calendar)."""
    return lambda text: "" if text == "" else check(text)


def _tag_or_clear(text: str) -> str:
    return text if text == "-" else tag(text)


#: ``run all --tag TAG``: a tag, checked.
TAG = Checked(tag, "TAG")


def _limit_or_clear(text: str) -> Any:
    """``-`` (drop all limits), ``NAME=0`` (drop NAME) or ``NAME=N``."""
    if text == "-":
        return text
    name, eq, count = text.partition("=")
    if eq and count.strip() == "0":
        return limit_name(name.strip()), 0
    return parse_limit(text)


def _duration(text: str) -> float:
    return parse_duration(text, "value", maximum=366 * 86400)


def schedule_options(fn):
    """Add the calendar, placement, limit and argument options; the
    command gets them as one mapping, ``schedule``."""

    @functools.wraps(fn)
    async def wrapper(*args, **kw):
        schedule = {k: kw.pop(k) for k in _NAMES}
        return await fn(*args, schedule=schedule, **kw)

    opts = [
        click.option("--cron", type=Checked(_or_empty(lambda t: cron_expr(t, "value")), "EXPR"),
                     help="Start by the calendar: a cron expression (5 fields, or 6 with seconds last: "
                     "'30 6 * * 1-5'), in the job's time zone. Replaces -t/--repeat; '' removes the calendar."),
        click.option("--at", "at", type=Checked(_or_empty(lambda t: sun_time(t, "value")), "SUNTIME"),
                     help="Start daily at sunrise, sunset, dawn, dusk or noon, optionally +/-OFFSET "
                     "(sunset-15m). Replaces -t/--repeat; '' removes the calendar."),
        click.option("--tz", type=Checked(lambda t: time_zone(t, "value"), "ZONE"),
                     help="Time zone of --cron/--at (IANA name; default: runner.timezone, else this machine's)."),
        click.option("--location", type=Checked(lambda t: location(t, "value"), "LAT,LON"),
                     help="Where the sun is watched for --at (default: runner.location)."),
        click.option("--jitter", type=Checked(_duration, "DURATION"),
                     help="Spread each calendar start by up to DURATION (the same delay on every node)."),
        click.option("--overlap", type=click.Choice(OVERLAP_POLICIES),
                     help="A start due while the last run runs: skip it (default), queue it, or cancel the run."),
        click.option("--catch-up", "catch_up", type=click.Choice(CATCH_UP_POLICIES),
                     help="A start missed while the group was down: run it once (default) or not."),
        click.option("--catch-up-window", type=Checked(_duration, "DURATION"),
                     help="Catch up only starts missed by at most this much (default 1h)."),
        click.option("--require-tag", multiple=True, type=Checked(_tag_or_clear, "TAG"),
                     help="Run only on runners with all these tags (repeatable; '-' clears)."),
        click.option("--prefer-tag", multiple=True, type=Checked(_tag_or_clear, "TAG"),
                     help="Run on runners with these tags while one is live (repeatable; '-' clears)."),
        click.option("--limit", multiple=True, type=Checked(_limit_or_clear, "NAME=N"),
                     help="At most N jobs of the group sharing the limit NAME run at once "
                     "(repeatable; adds to the stored ones; NAME=0 drops one, '-' all)."),
        click.option("-a", "--arg", multiple=True,
                     help="A positional argument of the procedure (repeatable, in order; replaces the stored ones)."),
        click.option("-l", "--literal", is_flag=True,
                     help="Read each --arg as a Python literal (42, 'x', [1, 2]) instead of text, as code call -l does."),
        click.option("--no-args", is_flag=True, help="Remove the stored positional arguments."),
    ]  # fmt: skip
    for opt in reversed(opts):
        wrapper = opt(wrapper)
    return wrapper


def apply_schedule(
    new: dict[str, Any], schedule: dict[str, Any], defaults: Callable[[], dict[str, Any]], *, interval: bool
) -> None:
    """Apply ``schedule`` (from `schedule_options`) to the fields ``new``
    of a job, in place.  ``interval``: ``-t`` or ``--repeat`` was given,
    which turns a calendar job back into one with a start time.
    ``defaults()``: the writer's zone and place (`calendar_defaults`),
    asked for only when the job follows a calendar."""
    s = schedule
    if s["cron"] and s["at"]:
        raise click.UsageError("give either --cron or --at, not both")
    if (s["cron"] or s["at"]) and interval:
        raise click.UsageError("a calendar job (--cron/--at) has no -t/--repeat")
    if s["cron"] == "" or s["at"] == "":
        for k in _CALENDAR:
            new.pop(k, None)
    if s["cron"] or s["at"]:
        for k in ("target", "repeat", *CALENDAR_FIELDS):
            new.pop(k, None)
        new.update({"cron": s["cron"]} if s["cron"] else {"at": s["at"]})
    elif interval:
        for k in _CALENDAR:
            new.pop(k, None)
    for k in ("tz", "location", "jitter", "overlap", "catch_up", "catch_up_window"):
        if s[k] is not None:
            new[k] = s[k]
    for opt, field in (("require_tag", "require_tags"), ("prefer_tag", "prefer_tags")):
        if s[opt]:
            if "-" in s[opt]:
                new.pop(field, None)
            else:
                new[field] = list(dict.fromkeys(s[opt]))
    if s["limit"]:
        limits = {} if "-" in s["limit"] else dict(new.get("limits") or {})
        limits.update(x for x in s["limit"] if x != "-")
        limits = {k: n for k, n in limits.items() if n}
        if limits:
            new["limits"] = limits
        else:
            new.pop("limits", None)
    if s["no_args"] and s["arg"]:
        raise click.UsageError("give either --arg or --no-args, not both")
    if s["no_args"]:
        new.pop("args", None)
    elif s["arg"]:
        new["args"] = positional_values(s["arg"], s["literal"], hint="--arg")
    elif s["literal"]:
        raise click.UsageError("-l/--literal reads the values of --arg: give them too")
    if any(new.get(k) is not None for k in CALENDAR_FIELDS):
        new.update(with_calendar_defaults(new, defaults()))
