"""Options and formatting shared by the ``distkv client run`` commands."""

import datetime
import time
from collections.abc import Callable
from typing import Any, TypeVar

import asyncclick as click

from distkv_ext.codekit.cli.complete import complete_groups

__all__ = [
    "group_options",
    "kind_of",
    "parse_when",
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
        help="Runner group (required: there is no default).",
    )(fn)
    return fn


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
    """``now``, ``never``, seconds from now (``30``, ``+30``) or an ISO
    time (``2026-12-01T06:00``, local time unless it says otherwise)."""
    now = time.time() if now is None else now
    t = text.strip().lower()
    if t == "now":
        return now
    if t == "never":
        return 0
    try:
        return now + float(t)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(f"{text!r}: use now, never, seconds from now, or an ISO time") from None


def plain_job(value):
    v = dict(value)
    if "code" in v:
        v["code"] = str(v["code"]) if not isinstance(v["code"], (list, tuple)) else ".".join(map(str, v["code"]))
    return v


def short(text, n=50):
    return text if len(text) <= n else text[: n - 1] + "…"


def state_word(states):
    if not states:
        return "never ran"
    words = []
    for n, s in sorted(states.items()):
        if s.get("node"):
            w = "running"
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
