"""Reading ``jobs.yaml`` of a deploy directory: the runner entries it wants.

Every setting of every job is checked before anything is written, and
every problem is reported, each naming the file's line::

    jobs.yaml:9: job 2 (heating.report): repeat must be a finite number, not inf

A job's settings are its own over the file's ``defaults``; the numbers
are checked as ``run set`` checks them (`distkv_ext.run.job_field`), the
data as DistKV would store it (`checks.storable_problems`).
"""

import datetime

from moat.util import Path

from distkv_ext.codekit.core.checks import one_line, storable_problems, target_time
from distkv_ext.codekit.core.errors import CodeError, InputRefused
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.source import read_source
from distkv_ext.run import CALENDAR_FIELDS, JOB_FIELDS, NEW_JOB_DEFAULTS, job_field, job_value, with_calendar_defaults

from ._yaml import load

__all__ = ["read_jobs", "JOB_DEFAULTS"]

#: The defaults of a new job (see `distkv_ext.run.NEW_JOB_DEFAULTS`).
JOB_DEFAULTS = NEW_JOB_DEFAULTS

_PLACE_KEYS = ("path", "group", "node", "all_nodes")
_NUMBERS = ("repeat", "delay", "backoff", "ok_after", "max_delay", "max_tries")


def read_jobs(tree, filename, rel, make_item, calendar=None):
    """Add the jobs of ``filename`` (``rel``: its name in messages) to
    ``tree.jobs``, and its problems to ``tree.problems``.  ``make_item(path,
    source, value, where, target_now, pin)`` makes a tree item.
    ``calendar()``: the writer's zone and place for calendar jobs that do
    not name them (`distkv_ext.run.calendar_defaults`; None: UTC, none)."""
    try:
        text = read_source(filename, rel)
        doc, line = load(text, rel) if text.strip() else ({}, lambda *k: 1)
    except CodeError as exc:
        tree.problems.append(str(exc))
        return
    if doc is None:
        doc = {}
    if not isinstance(doc, dict) or set(doc) - {"defaults", "jobs"}:
        tree.problems.append(f"{rel}:1: must be a mapping with 'jobs' (a list) and optional 'defaults'")
        return
    defaults = doc.get("defaults") or {}
    jobs = doc.get("jobs") or []
    if not isinstance(defaults, dict) or not isinstance(jobs, list):
        tree.problems.append(f"{rel}:1: 'defaults' must be a mapping and 'jobs' a list")
        return
    for n, job in enumerate(jobs, 1):
        if not isinstance(job, dict):
            tree.problems.append(f"{rel}:{line('jobs', n - 1)}: job {n}: must be a mapping of job settings")
            continue
        name = f" ({job['path']})" if isinstance(job.get("path"), str) else ""
        source = f"{rel}:{line('jobs', n - 1)}: job {n}{name}"

        def line_of(key, job=job, n=n):
            keys = key if isinstance(key, tuple) else (key,)
            return line("jobs", n - 1, *keys) if keys[0] in job else line("defaults", *keys)

        problems = []

        def problem(key, msg, problems=problems, line_of=line_of, n=n, name=name):
            problems.append(f"{rel}:{line_of(key)}: job {n}{name}: {msg}")

        got = _job(dict(defaults) | job, problem, calendar)
        tree.problems += problems
        if problems:
            continue
        path, value, where, target_now, pin = got
        k = where + (tuple(path),)
        if k in tree.jobs:
            tree.problems.append(f"{source}: the same job as {tree.jobs[k].source}")
            continue
        tree.jobs[k] = make_item(path, source, value, where, target_now, pin)


def _job(fields, problem, calendar=None):
    """Check one job's settings; report each problem with ``problem(key,
    message)``; return (path, value, where, target_now, pin), or None
    when there was a problem."""
    bad = False

    def refuse(key, msg):
        nonlocal bad
        bad = True
        problem(key, msg)

    for k in list(fields):
        if not isinstance(k, str):
            refuse(k, f"setting {k!r} is not text (settings are names like repeat)")
            del fields[k]
        elif k not in JOB_FIELDS and k not in _PLACE_KEYS:
            refuse(k, f"unknown setting {k}")
            del fields[k]
    path = fields.pop("path", None) or fields.get("code")
    if path is None:
        refuse("code", "needs 'code' (the procedure) or 'path'")
    else:
        try:
            path = as_path(_text(path, "path"), "job")
            fields.setdefault("code", str(path))
            as_path(_text(fields["code"], "code"), "procedure")
        except InputRefused as exc:
            refuse("code", str(exc))
    group = fields.pop("group", "default")
    node = fields.pop("node", None)
    all_nodes = fields.pop("all_nodes", False)
    for key, v in (("group", group), ("node", node)):
        if v is not None and (not isinstance(v, (str, int)) or isinstance(v, bool) or str(v) == ""):
            refuse(key, f"{key} must be a name, not {v!r}")
    if all_nodes not in (True, False, None):
        refuse("all_nodes", "all_nodes must be true or false")
    where = ("any", str(group), None)
    if all_nodes or node == "-":
        where = ("all", str(group), None)
    elif node is not None:
        where = ("single", str(group), str(node))
    target_now = False
    if "target" in fields:
        try:
            fields["target"], target_now = _target(fields["target"])
        except InputRefused as exc:
            refuse("target", str(exc))
    for k in _NUMBERS:
        if fields.get(k) is not None:
            try:
                job_field(k, fields[k])
            except InputRefused as exc:
                refuse(k, str(exc))
    data = fields.get("data")
    if data is not None and not isinstance(data, dict):
        refuse("data", "data must be a mapping of variable names to values")
    elif data:
        for k, v in data.items():
            if not isinstance(k, str):
                refuse("data", f"data: key {k!r} is not text (keys must be strings)")
                continue
            for p in storable_problems(v, f"data.{k}" if k.isidentifier() else f"data[{k!r}]"):
                refuse(("data", k), p)
    if fields.get("info") is not None:
        try:
            one_line(fields["info"], "info")
        except InputRefused as exc:
            refuse("info", str(exc))
    pin = fields.pop("pin", False)
    if pin not in (True, False, None):
        refuse("pin", "pin must be true or false (deploy pins the hash of what it deploys)")
    if bad:
        return None
    if any(fields.get(k) is not None for k in CALENDAR_FIELDS):
        fields = with_calendar_defaults(fields, calendar() if calendar else {"tz": "UTC"})
    try:
        value = job_value({**JOB_DEFAULTS, **fields})
    except InputRefused as exc:  # (the numbers are checked above; the last word is job_value's)
        msg = str(exc)
        problem(next((k for k in fields if k in JOB_FIELDS and msg.startswith(k)), "code"), msg)
        return None
    return Path.build(path), value, where, target_now, bool(pin)


def _text(v, key):
    if isinstance(v, (str, Path)):
        return v
    raise InputRefused(f"{key} must be a path like heating.pump, not {v!r}")


def _target(t):
    """``now`` (start when deployed: a stored start time is kept), ``never``,
    an ISO time or seconds since the epoch -> (timestamp, is_now).  Times
    before 1970 or more than 100 years away are refused."""
    if isinstance(t, str) and t.strip().lower() == "now":
        return 0, True
    if t is None or (isinstance(t, str) and t.strip().lower() == "never"):
        return 0, False
    if isinstance(t, datetime.datetime):
        when = t.timestamp()
    elif isinstance(t, datetime.date):
        when = datetime.datetime.combine(t, datetime.time()).timestamp()
    elif isinstance(t, str):
        try:
            when = datetime.datetime.fromisoformat(t.strip()).timestamp()
        except (ValueError, OverflowError, OSError):
            raise InputRefused(f"target {t!r}: use now, never, an ISO time or seconds since the epoch") from None
    else:
        return target_time(t, "target"), False
    try:
        return target_time(when, "target"), False
    except InputRefused as exc:  # name the time as written, not as a number
        raise InputRefused(str(exc).replace(f"target {when:g}", f"target {str(t)!r}", 1)) from None
