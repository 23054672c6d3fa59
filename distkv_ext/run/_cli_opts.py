"""Options and formatting shared by the ``distkv client run`` commands."""

import datetime
import time
from collections.abc import Callable
from typing import Any, TypeVar

import asyncclick as click

from distkv_ext.codekit.cli.complete import complete_groups
from distkv_ext.codekit.cli.params import Checked
from distkv_ext.codekit.core.checks import MAX_SECONDS, number, parse_number, target_time
from distkv_ext.codekit.core.errors import BadArguments, InputRefused
from distkv_ext.codekit.core.paths import as_path

from ._config import RunnerConfig
from ._layout import OUTPUT_PREFIX, job_field

__all__ = [
    "group_options",
    "node_options",
    "kind_of",
    "parse_when",
    "job_number",
    "WHEN",
    "PROCEDURE",
    "runner_config",
    "plain_job",
    "short",
    "state_word",
    "next_start_text",
    "parse_bind",
]


_F = TypeVar("_F", bound=Callable[..., Any])


def group_options(fn: _F) -> _F:
    """``-g GROUP``, ``-n NODE`` / ``--all-nodes``: which runner group."""
    fn = click.option("--all-nodes", is_flag=True, help="All-node runner / job (same as '-n -').")(fn)
    fn = click.option("-n", "--node", help="Single-node runner / job of NODE ('-': all nodes).")(fn)
    fn = click.option(
        "-g",
        "--group",
        required=True,
        shell_complete=complete_groups,
        callback=_group,
        help="Runner group (required: there is no default).",
    )(fn)
    return fn


def node_options(fn: _F) -> _F:
    """``-g GROUP``, ``--node NODE`` / ``--all-nodes``: `group_options`
    without ``-n`` (for a command whose ``-n`` is a count: ``run next``)."""
    fn = click.option("--all-nodes", is_flag=True, help="All-node runner / job (same as '--node -').")(fn)
    fn = click.option("--node", help="Single-node runner / job of NODE ('-': all nodes).")(fn)
    fn = click.option(
        "-g",
        "--group",
        required=True,
        shell_complete=complete_groups,
        callback=_group,
        help="Runner group (required: there is no default).",
    )(fn)
    return fn


def _group(ctx, param, value):
    if value is not None and not value.strip():
        raise click.BadParameter("a group needs a name", ctx=ctx, param=param)
    return value


def kind_of(node: str | None, all_nodes: bool) -> tuple[str, str | None]:
    """(kind, node) from ``-n NODE`` / ``--all-nodes``."""
    if all_nodes or node == "-":
        if node not in (None, "-"):
            raise click.UsageError("give either -n NODE or --all-nodes, not both")
        return "all", None
    if node:
        return "single", node
    return "any", None


def parse_when(text, now=None):
    """``now``, ``never``, seconds from now (``30``, ``+30``, ``-5``) or an
    ISO time (``2026-12-01T06:00``, local time unless it says otherwise),
    as a Unix time (0: never).  Refused (`InputRefused`): anything else,
    ``nan``/``inf``, and times more than 100 years away or before 1970."""
    now = time.time() if now is None else now
    t = text.strip().lower()
    if t == "now":
        return now
    if t == "never":
        return 0
    try:
        offset = float(t)
    except ValueError:
        pass
    else:
        return now + number(offset, "value", minimum=-MAX_SECONDS, maximum=MAX_SECONDS)
    try:
        when = datetime.datetime.fromisoformat(text.strip()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InputRefused(f"{text!r}: use now, never, seconds from now, or an ISO time") from None
    try:
        return target_time(when, "time", now=now)
    except InputRefused as exc:
        raise InputRefused(str(exc).replace(f"time {when:g}", repr(text), 1)) from None


def job_number(name):
    """The option type of the job field ``name`` (``repeat``, ``delay``,
    ...): a number checked as the runner entry checks it (`job_value`)."""

    def check(text):
        value = parse_number(text, "value", integer=name == "max_tries")
        try:
            return job_field(name, value)
        except InputRefused as exc:
            # the field's message names the field: the option names it already
            raise InputRefused(str(exc).replace(f"{name} ", "value ", 1)) from None

    return Checked(check, "INTEGER" if name == "max_tries" else "SECONDS" if name != "backoff" else "FACTOR")


#: ``-t WHEN``: now, never, seconds from now or an ISO time, checked.
WHEN = Checked(parse_when, "WHEN")


#: ``-c CODE``: a procedure's path (DistKV's path syntax).
PROCEDURE = Checked(lambda text: as_path(text, "procedure"), "CODE")


def runner_config(runner_cfg: Any, **options: float | None) -> RunnerConfig:
    """`RunnerConfig` from the ``runner:`` settings and the options of
    ``run all`` (``weight=...``; None: not given).  A bad option value is
    a usage error naming the option (exit status 2); a bad setting in the
    configuration stays `BadArguments` (exit status 2 too) naming the
    setting."""
    try:
        return RunnerConfig.load(runner_cfg, **options)
    except BadArguments as exc:
        msg = str(exc)
        for name, value in options.items():
            lead = f"runner.{name} must "
            if value is not None and msg.startswith(lead):
                raise click.BadParameter(msg[len(lead) - len("must ") :], param_hint=f"--{name}") from None
        raise


def plain_job(value):
    v = dict(value)
    if "code" in v:
        v["code"] = str(v["code"]) if not isinstance(v["code"], (list, tuple)) else ".".join(map(str, v["code"]))
    return v


def short(text, n=50):
    return text if len(text) <= n else text[: n - 1] + "…"


listen_option = click.option(
    "--listen/--no-listen",
    default=True,
    show_default=True,
    help="Listen to the job's group (at most runner.timeout) to tell running jobs from those whose runner is gone.",
)


def state_word(states, gone=(), paused=False):
    """One word per state (all-node jobs: ``NODE:word`` each); ``gone``:
    the nodes whose runners were not heard in their group; ``paused``:
    the job is paused (``run pause``): "paused" unless a run goes on."""
    if not states:
        return "paused" if paused else "never ran"
    words = []
    for n, s in sorted(states.items()):
        if s.get("node") and s.get("node") in gone:
            w = "runner gone"
        elif s.get("node"):
            waiting = s.get("waiting")
            w = ("stopping" if waiting.startswith("stopping") else "waiting") if isinstance(waiting, str) else "running"
            if isinstance(waiting, str) and waiting.startswith("waiting for limit "):
                w = waiting  # claimed, waiting for a slot: which limit, how many in use (`_limiter`)
        elif s.get("quarantined"):
            w = "quarantined"
        elif paused:
            w = "paused"
        elif s.get("error"):
            w = "failed"
        elif s.get("runs"):
            w = "done"
        else:
            w = "waiting"
        words.append(f"{n}:{w}" if n else w)
    return " ".join(words)


def next_start_text(states, now):
    ts = [s.get("computed") for s in states.values() if s.get("computed")]
    if not ts:
        return ""
    d = min(ts) - now
    return "now" if d <= 0 else f"in {d:.0f} s"


def parse_bind(text: str, default_port: int, any_port: bool = False) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port);
    with ``any_port``, port 0 (a free one) is allowed."""
    t = text.strip()
    host, port = t, str(default_port)
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
    elif t.count(":") == 1:
        host, port = t.split(":")
    try:
        p = int(port)
    except ValueError:
        p = -1
    if not (0 if any_port else 1) <= p < 65536 or (not host and not t.startswith(":")):
        raise click.BadParameter(f"{text!r}: use HOST:PORT, e.g. 127.0.0.1:{default_port}")
    return host or "127.0.0.1", p


def prefixes_of(obj: Any) -> tuple[Any, Any]:
    """(runner entries, states): where the configuration keeps them."""
    r = obj.cfg["runner"]
    return r["prefix"], r["state"]


def output_prefix_of(obj: Any) -> Any:
    """Where the configuration keeps the jobs' output."""
    return obj.cfg["runner"].get("output", OUTPUT_PREFIX)
