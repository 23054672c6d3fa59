"""Where jobs live in the store, and what a runner entry holds.

The one place that knows DistKV 0.65's layout of runners:

* runner entries: ``RUN_PREFIX`` + `runner_subpath` + JOB
  (``.distkv run any GROUP JOB``, ``... all GROUP JOB``,
  ``... at NODE GROUP JOB``);
* their state: ``STATE_PREFIX`` + the same subpath (+ NODE for all-node
  jobs, one state per member) + JOB;
* their output: ``OUTPUT_PREFIX`` + the state's subpath + JOB + RUN;
* where status pages announce themselves (`WEB_PREFIX`);
* the fields of a runner entry (`JOB_FIELDS`), checked by `job_value`,
  with the defaults of a new job (`NEW_JOB_DEFAULTS`).
"""

from collections.abc import Iterable, Mapping
from typing import Any

from distkv.default import CFG
from moat.util import P, Path

from distkv_ext.codekit.core.checks import (
    MAX_SECONDS,
    check_storable,
    mapping,
    number,
    one_line,
    target_time,
    type_name,
)
from distkv_ext.codekit.core.errors import BadArguments, InputRefused
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.whenchecks import (
    CATCH_UP_POLICIES,
    OVERLAP_POLICIES,
    cron_expr,
    limit_map,
    location,
    seconds,
    sun_time,
    tag_list,
    time_zone,
    word,
)

__all__ = [
    "RUN_PREFIX",
    "STATE_PREFIX",
    "PROC_PREFIX",
    "MODULE_PREFIX",
    "OUTPUT_PREFIX",
    "KINDS",
    "JOB_FIELDS",
    "CALENDAR_FIELDS",
    "CALENDAR_ONLY",
    "CALENDAR_DEFAULTS",
    "NEW_JOB_DEFAULTS",
    "job_value",
    "job_field",
    "entry_problem",
    "stamp_target",
    "runner_subpath",
    "split_job_path",
    "output_path",
    "job_name",
    "WEB_PREFIX",
    "PAUSE_PREFIX",
    "pause_path",
    "pause_prefix",
]

#: Where runner entries are kept unless configured (DistKV's ``runner.prefix``).
RUN_PREFIX = CFG.runner.prefix
#: Where their states are kept unless configured (DistKV's ``runner.state``).
STATE_PREFIX = CFG.runner.state
#: Where procedures are kept unless configured (DistKV's ``codes.prefix``).
PROC_PREFIX = CFG.codes.prefix
#: Where modules are kept unless configured (DistKV's ``modules.prefix``).
MODULE_PREFIX = CFG.modules.prefix
#: Where the jobs' output goes unless configured (``runner.output``).
OUTPUT_PREFIX = P(":.distkv.output")

#: Where status pages (``distkv client run web``) announce themselves:
#: ``.distkv web HOST:PORT`` = {url, groups, host, pid, started, actions}.
WEB_PREFIX = P(":.distkv.web")

#: Where operators pause jobs (``run pause``), apart from the jobs'
#: definitions (runner entries) and from what runners write (states):
#: ``.distkv pause`` + `runner_subpath` (+ the job's path) = {by, at,
#: reason}; a value at the group's own path pauses the whole group
#: (`pause_path`).  A value there pauses every job at or below it.
PAUSE_PREFIX = P(":.distkv.pause")

#: The three kinds of runner: one node of a group, every member, one named node.
KINDS = ("any", "all", "single")

#: Fields of a runner entry that ``store_job``'s ``edit`` may set.
JOB_FIELDS = (
    "code",
    "data",
    "target",
    "repeat",
    "delay",
    "backoff",
    "ok_after",
    "max_delay",
    "max_tries",
    "info",
    "pin",
    # calendar (see run/_calendar.py; DistKV's own runner ignores them)
    "cron",
    "at",
    "tz",
    "location",
    "jitter",
    "overlap",
    "catch_up",
    "catch_up_window",
    # placement and limits
    "require_tags",
    "prefer_tags",
    "limits",
    # positional arguments of the procedure
    "args",
)

#: The fields that make a job a calendar job (at most one of them).
CALENDAR_FIELDS = ("cron", "at")
#: Fields that mean something only for a calendar job.
CALENDAR_ONLY = ("jitter", "overlap", "catch_up", "catch_up_window")
#: Defaults of a calendar job where its entry says nothing: skip a start
#: due while the last run still runs; run a missed start once if it is
#: at most an hour late.
CALENDAR_DEFAULTS = {"overlap": "skip", "catch_up": "once", "catch_up_window": 3600}


#: The numeric fields of a runner entry and how each is checked: seconds
#: (0 .. 100 years), a factor of at least 1, a count.
_LIMITS: dict[str, dict[str, Any]] = {
    "repeat": {"minimum": 0, "maximum": MAX_SECONDS},
    "delay": {"minimum": 0, "maximum": MAX_SECONDS},
    "ok_after": {"minimum": 0, "maximum": MAX_SECONDS},
    "max_delay": {"minimum": 0, "maximum": MAX_SECONDS},
    "backoff": {"minimum": 1, "maximum": 1000},
    "max_tries": {"minimum": 0, "maximum": 2**31 - 1, "integer": True},
}


def job_field(name: str, value: Any) -> int | float:
    """The numeric job field ``name`` (``target``, ``repeat``, ``delay``,
    ``ok_after``, ``max_delay``, ``max_tries``, ``backoff``) checked as
    `job_value` checks it (whole numbers as int); `InputRefused` naming
    the field when it is no finite number or out of range."""
    f = target_time(value, name) if name == "target" else number(value, name, **_LIMITS[name])
    return int(f) if f == int(f) else f


def _num(name: str, v: Any) -> int | float | None:
    return None if v is None else job_field(name, v)


def job_value(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check runner entry fields; return the dict to store (DistKV's layout).
    Raises `InputRefused` for unknown fields, a missing procedure path,
    numbers that are not finite or out of range (negative; more than 100
    years of seconds; a ``backoff`` below 1; a ``target`` before 1970 or
    more than 100 years away, 0 meaning none), data that is no mapping or
    that DistKV cannot store (`checks.storable_problems`), ``info`` that
    is not one line."""
    unknown = set(fields) - set(JOB_FIELDS)
    if unknown:
        raise InputRefused(f"unknown job fields: {', '.join(sorted(map(str, unknown)))}")
    code = fields.get("code")
    if code is None:
        raise InputRefused("a job needs the path of its procedure (-c CODE)")
    code = as_path(code, "procedure")
    data = fields.get("data") or {}
    if not isinstance(data, dict):
        raise InputRefused("data must be a mapping of variable names to values")
    check_storable(data, "data")
    value: dict[str, Any] = {"code": code, "data": dict(data)}
    for k in ("target", "repeat", "delay", "ok_after", "max_delay", "max_tries", "backoff"):
        v = _num(k, fields.get(k))
        if v is not None:
            value[k] = v
    if fields.get("info") is not None:
        value["info"] = one_line(fields["info"], "info")
    if fields.get("pin"):
        value["pin"] = str(fields["pin"])
    value.update(_calendar_fields(fields))
    value.update(_placement_fields(fields))
    if fields.get("args") is not None:
        value["args"] = _args(fields["args"])
    return value


def _calendar_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The calendar fields of a job, checked, and how they go together."""
    value: dict[str, Any] = {}
    given = [k for k in CALENDAR_FIELDS if fields.get(k) is not None]
    if len(given) > 1:
        raise InputRefused("a job starts either by cron or at a sun time (at), not both")
    if given:
        if fields.get("repeat"):
            raise InputRefused(f"a calendar job ({given[0]}) does not also repeat: leave out repeat")
        if fields.get("target"):
            raise InputRefused(f"a calendar job ({given[0]}) starts by its calendar: leave out the start time")
        if fields.get("tz") is None:
            raise InputRefused(f"a calendar job ({given[0]}) needs a time zone (tz)")
    else:
        extra = [k for k in (*CALENDAR_ONLY, "tz", "location") if fields.get(k) is not None]
        if extra:
            raise InputRefused(f"{', '.join(extra)}: only for a calendar job (cron or at)")
    if fields.get("cron") is not None:
        value["cron"] = cron_expr(fields["cron"])
    if fields.get("at") is not None:
        value["at"] = sun_time(fields["at"], "at")
        if fields.get("location") is None:
            raise InputRefused("a sun time needs a location (LATITUDE,LONGITUDE; or runner.location)")
    if fields.get("tz") is not None:
        value["tz"] = time_zone(fields["tz"], "tz")
    if fields.get("location") is not None:
        value["location"] = location(fields["location"])
    for k in ("jitter", "catch_up_window"):
        if fields.get(k) is not None:
            value[k] = seconds(fields[k], k, maximum=366 * 86400)
    if fields.get("overlap") is not None:
        value["overlap"] = word(fields["overlap"], OVERLAP_POLICIES, "overlap")
    if fields.get("catch_up") is not None:
        value["catch_up"] = word(fields["catch_up"], CATCH_UP_POLICIES, "catch_up")
    return value


def _placement_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Tags a runner needs or is preferred with, and concurrency limits."""
    value: dict[str, Any] = {}
    for k in ("require_tags", "prefer_tags"):
        if fields.get(k):
            value[k] = tag_list(fields[k], k)
    if fields.get("limits"):
        value["limits"] = limit_map(fields["limits"])
    return value


def _args(args: Any) -> list[Any]:
    """Positional arguments of the procedure: a list DistKV can store."""
    if not isinstance(args, (list, tuple)):
        raise InputRefused(f"args is {type_name(args)}, not a list")
    if len(args) > 256:
        raise InputRefused(f"args: at most 256 arguments, not {len(args)}")
    check_storable(list(args), "args")
    return list(args)


def entry_problem(value: Any) -> str | None:
    """Why a stored runner entry (written by anyone, with any client)
    cannot be scheduled, in one line (``'data' is list, not a mapping``,
    ``repeat must be a finite number, not nan``); None if it can.  The
    checks of `job_value` on what the scheduler uses; unknown fields are
    left alone (DistKV's, or a later release's)."""
    try:
        mapping(value)
        code = value.get("code")
        if code is not None and not isinstance(code, (str, list, tuple, Path)):
            raise InputRefused(f"bad code path {code!r}: {type_name(code)}, not a path")
        if value.get("data") is not None:
            mapping(value["data"], "'data'")
        for k in ("target", *_LIMITS):
            if value.get(k) is not None:
                job_field(k, value[k])
        if value.get("pin") and not isinstance(value["pin"], str):
            raise InputRefused(f"pin is {type_name(value['pin'])}, not a hash")
        if any(value.get(k) is not None for k in (*CALENDAR_FIELDS, "tz", *CALENDAR_ONLY, "location")):
            _calendar_fields({k: value.get(k) for k in (*CALENDAR_FIELDS, *CALENDAR_ONLY, "tz", "location")})
        _placement_fields(value)
        if value.get("args") is not None:
            _args(value["args"])
    except InputRefused as exc:
        return str(exc)
    return None


_CALENDAR_KEYS = ("cron", "at", "tz", "location")


def stamp_target(value: dict[str, Any], old: Any, now: float) -> dict[str, Any]:
    """``value``, a runner entry about to replace ``old`` (the stored
    value, None if none), with its ``written`` field: ``now`` (the
    writer's clock) when the target is new or changed, else the stored
    one (so that rewriting a job unchanged changes nothing).

    Runners read a target at or before ``written`` as "start at once",
    whatever their own clocks say (`_schedule.next_start`); DistKV's own
    runner ignores the field.  A calendar job's (``cron``, ``at``) is
    stamped likewise when its calendar (``cron``, ``at``, ``tz``,
    ``location``) is new or changed: its slots count from then
    (`_calplan`).  It is no field an operator sets (not in
    `JOB_FIELDS`); a stored one that is no time is ignored."""
    res = {k: v for k, v in value.items() if k != "written"}
    target = res.get("target")
    before = old if isinstance(old, Mapping) else {}
    if res.get("cron") or res.get("at"):  # a calendar job: when its calendar was set
        if any(res.get(k) != before.get(k) for k in _CALENDAR_KEYS):
            res["written"] = now
        elif before.get("written") is not None:
            res["written"] = before["written"]
    elif target and target != before.get("target"):
        res["written"] = now
    elif target and before.get("written") is not None:
        res["written"] = before["written"]
    return res


#: Settings of a job created by ``run set`` or a deploy, where not given:
#: retry after 10 s, doubling up to 10 minutes.
NEW_JOB_DEFAULTS = {"delay": 10, "backoff": 2, "max_delay": 600}


def job_name(path: Iterable[Any]) -> str:
    """A job's name within its group (its path below the group, dotted):
    the key of assignments and claims."""
    return ".".join(str(x) for x in path)


def runner_subpath(kind: str, group: Any, node: Any = None) -> tuple[Any, ...]:
    """DistKV's subpath of a runner group: ``("any", GROUP)``,
    ``("all", GROUP)`` or ``("at", NODE, GROUP)``.  Raises ValueError for
    an unknown kind, or a single-node runner without a node."""
    if kind == "any":
        return ("any", group)
    if kind == "all":
        return ("all", group)
    if kind == "single":
        if not node:
            raise ValueError("a single-node runner needs a node name")
        return ("at", node, group)
    raise ValueError(f"unknown runner kind {kind!r}")


def pause_path(prefix: Path, kind: str, group: Any, node: Any = None, job: Iterable[Any] = ()) -> Path:
    """Where the pause of a job lives: ``prefix`` (`PAUSE_PREFIX`) + the
    group's `runner_subpath` + ``job`` (its path); ``job`` empty: the
    pause of the whole group."""
    return prefix + runner_subpath(kind, group, node) + tuple(job)


def pause_prefix(runner_cfg: Mapping[str, Any] | None) -> Path:
    """Where pauses live by the ``runner:`` settings (``runner.pause``, a
    path or its text), else `PAUSE_PREFIX`; `BadArguments` for a setting
    that is no path."""
    v = (runner_cfg or {}).get("pause")
    if v is None:
        return PAUSE_PREFIX
    if isinstance(v, Path):
        return v
    if isinstance(v, str) and v:
        return P(v)
    if isinstance(v, (list, tuple)) and v:
        return Path.build(v)
    raise BadArguments(f"runner.pause must be a DistKV path, not {v!r}")


def split_job_path(path: Iterable[Any]) -> tuple[str, Any, Any, Path] | None:
    """``.distkv run`` subpath -> (kind, group, node or None, job path);
    None if it is no job's path."""
    parts = tuple(path)
    if len(parts) >= 3 and parts[0] in ("any", "all"):
        return parts[0], parts[1], None, Path.build(parts[2:])
    if len(parts) >= 4 and parts[0] == "at":
        return "single", parts[2], parts[1], Path.build(parts[3:])
    return None


def output_path(prefix: Path, state_subpath: Iterable[Any], job: Iterable[Any], run: int) -> Path:
    """Where run number ``run`` of ``job`` keeps its output: ``prefix`` +
    the state subpath + the job's path + the run number (a string)."""
    return prefix + tuple(state_subpath) + tuple(job) + (str(run),)
