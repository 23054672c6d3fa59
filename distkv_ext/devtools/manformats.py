"""The man page of the deploy directory's file formats: distkv-code-deploy(5).

``distkv client code deploy DIR`` reads a directory; this page says what
may be in it: the layout, the ``# distkv:`` settings header of procedure
and module files, and ``jobs.yaml``.  Written here (the formats are not a
click tree), generated into ``man/`` by ``./dev.sh docs`` with the
command pages, and checked for freshness by the same test; the job keys
come from `distkv_ext.run.JOB_FIELDS`.
"""

import importlib.metadata

from distkv_ext.deploy import JOB_DEFAULTS
from distkv_ext.run import JOB_FIELDS

__all__ = ["PAGES", "render_deploy"]

VERSION = importlib.metadata.version("distkv-code")

#: What the job keys of jobs.yaml mean (every key of `JOB_FIELDS` needs one).
JOB_KEYS = {
    "code": "the procedure to run (a path, e.g. heating.pump); the job's path defaults to it",
    "data": "a mapping of the procedure's variables to values",
    "target": "when to start: now (start when deployed; a job that has started is not started again for it),"
    " never, an ISO time (2026-12-01T06:00) or seconds since the epoch",
    "repeat": "seconds after a successful run to run again (0: don't)",
    "delay": "seconds before retrying after an error",
    "backoff": "factor by which each further retry waits longer (at least 1)",
    "ok_after": "a run that lasts this many seconds counts as healthy (resets the backoff)",
    "max_delay": "longest wait between retries",
    "max_tries": "give up after this many errors in a row (0: never)",
    "info": "one line describing the job",
    "pin": "true: run exactly the procedure deployed (its content hash); a changed procedure is refused",
    "require_tags": "a list of tags (relay, room=kitchen): run only on runners that carry all of them (run all --tag)",
    "prefer_tags": "a list of tags: run on a runner that carries all of them while one is live, else on another",
    "cron": "start by this cron expression instead of target/repeat: 5 fields, or 6 with seconds last ('30 6 * * 1-5')",
    "at": "start daily at a sun time instead of target/repeat: sunrise, sunset, dawn, dusk or noon, +/-OFFSET (sunset-15m)",
    "tz": "the time zone of cron/at, an IANA name (default: runner.timezone of the deploying machine, else its zone)",
    "location": "where the sun times are: [latitude, longitude] (default: runner.location)",
    "jitter": "delay each calendar start by up to this long (90, 15m), the same on every node",
    "overlap": "a start due while the last run runs: skip (default), queue or cancel",
    "catch_up": "a start missed while the group was down: once (default: run it once) or none",
    "catch_up_window": "how late a missed start may still run (default 1h)",
    "limits": "a mapping {NAME: N}: at most N jobs of the group sharing NAME run at once",
    "args": "a list of positional arguments for the procedure (they fill its variables in order)",
}

#: Keys of a job that say where it runs, not what it is.
PLACE_KEYS = {
    "path": "the job's name within its group (default: its code)",
    "group": "the runner group (default: default; give it, or set it in defaults)",
    "node": "a single-node job of this node (- : an all-node job)",
    "all_nodes": "true: an all-node job (every member of the group runs it)",
}

#: The settings of a procedure's header, and what they mean.
HEADER_KEYS = {
    "mode": "sync (the default: runs in the runner's event loop), thread (a worker thread) or async",
    "vars": "the required variables, a list of names",
    "default": "variables with default values, a mapping",
    "requires": "stored modules the code needs, a list of module paths (imported before each call)",
    "info": "one line describing it",
}

_EXAMPLE_HEADER = """\
# distkv:
#   mode: async
#   vars: [pump]
#   default: {setpoint: 21.5}
#   requires: [util.pid]
#   info: Drive a boiler pump"""

_EXAMPLE_JOBS = """\
defaults: {group: boiler}
jobs:
  - path: heating.pump.1
    code: heating.pump
    data: {pump: 1}
    target: now
    pin: true
  - code: heating.report
    node: pi1
    repeat: 3600"""


def _esc(text):
    out = []
    for line in text.replace("\\", "\\e").replace("-", "\\-").splitlines():
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def _keys(items):
    res = []
    for k, text in items.items():
        res += [".TP", f"\\fB{_esc(k)}\\fR", _esc(text)]
    return res


def _literal(text):
    return [".PP", ".RS", ".nf", _esc(text), ".fi", ".RE"]


def render_deploy():
    """The roff text of distkv-code-deploy(5)."""
    missing = set(JOB_FIELDS) - set(JOB_KEYS)
    if missing:  # a new job field: say what it means
        raise RuntimeError(f"manformats.JOB_KEYS lacks {sorted(missing)}")
    defaults = ", ".join(f"{k} {v}" for k, v in JOB_DEFAULTS.items())
    lines = [
        f'.TH DISTKV-CODE-DEPLOY 5 "" "distkv-code {VERSION}" "distkv-code manual"',
        ".SH NAME",
        "distkv\\-code\\-deploy \\- the files of a deploy directory: settings headers and jobs.yaml",
        ".SH SYNOPSIS",
        ".nf",
        "\\fIDIR\\fR/procs/heating/pump.py      procedure heating.pump",
        "\\fIDIR\\fR/modules/util/pid.py        module util.pid",
        "\\fIDIR\\fR/modules/util/__init__.py   module util",
        "\\fIDIR\\fR/jobs.yaml                  runner entries",
        ".fi",
        ".SH DESCRIPTION",
        "\\fBdistkv client code deploy\\fR \\fIDIR\\fR makes the store match the directory. A file's path below",
        "\\fIprocs/\\fR or \\fImodules/\\fR is the stored path (\\fI__init__.py\\fR: the package itself).",
        "Each part says what the deploy manages: without \\fIprocs/\\fR no procedure is touched, and so on.",
        ".PP",
        "Files named README*, *.md, *.txt, *.rst, hidden files and __pycache__ are skipped; any other file",
        "below \\fIprocs/\\fR or \\fImodules/\\fR that is not a .py file is a problem. Every file must be UTF\\-8,",
        "compile, and be at most 4 MiB.",
        ".SH THE SETTINGS HEADER",
        "A procedure or module file may start (after blank lines) with the line \\fB# distkv:\\fR; the lines",
        "after it that start with \\fB#\\fR and two spaces are YAML, a mapping of these settings:",
        *_keys(HEADER_KEYS),
        ".PP",
        "Modules know \\fBrequires\\fR and \\fBinfo\\fR only. Any other key is a problem. The header stays in",
        "the stored code (it is a comment), so line numbers in errors and tracebacks are those of the file.",
        *_literal(_EXAMPLE_HEADER),
        ".SH JOBS.YAML",
        "A mapping with \\fBjobs\\fR, a list of jobs, and optional \\fBdefaults\\fR, keys that apply to every",
        "job that does not set them itself. Where a job runs:",
        *_keys(PLACE_KEYS),
        ".PP",
        "What it runs and when (the keys of \\fBdistkv client run set\\fR):",
        *_keys(JOB_KEYS),
        ".PP",
        _esc(f"A new job gets these unless it says otherwise: {defaults}."),
        *_literal(_EXAMPLE_JOBS),
        ".SH EXAMPLES",
        "Show what a deploy would change (exit status 1 if anything):",
        ".PP",
        ".RS",
        "\\fBdistkv client code deploy deploy/ \\-\\-dry\\-run\\fR",
        ".RE",
        ".PP",
        "The repository's \\fIexamples/deploy/\\fR is a complete directory.",
        ".SH SEE ALSO",
        "\\fBdistkv\\-client\\-code\\fR(1) (deploy, history, revert), \\fBdistkv\\-client\\-run\\fR(1),",
        "\\fBdistkv\\-client\\-module\\fR(1); README.md of distkv\\-code.",
    ]
    return "\n".join(lines) + "\n"


#: {file name: function making it} of the pages written here.
PAGES = {"distkv-code-deploy.5": render_deploy}
