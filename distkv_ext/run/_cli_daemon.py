"""``distkv client run all`` (the runner daemon) and ``run web`` (the status page).

Parse options, call `distkv_ext.run.run_daemon` / `distkv_ext.web.serve_web`.
"""

import sys
from typing import Any

import asyncclick as click

from distkv_ext.codekit.cli.boundary import boundary, get_client
from distkv_ext.codekit.cli.common import EXIT_CODES
from distkv_ext.codekit.cli.complete import complete_groups

from . import ALL_KINDS, run_daemon
from ._cli_opts import group_options, kind_of, parse_bind, runner_config
from ._cli_sched import TAG

__all__ = ["all_", "web"]


def _say(text: str) -> None:
    """The daemons' start-up summary: once, on stderr."""
    print(text, file=sys.stderr, flush=True)


@click.command("all", epilog=EXIT_CODES)
@group_options
@click.option(
    "--name",
    help="This node's name in the group, and the NODE whose single-node jobs run here (default: the host name).",
)
@click.option(
    "--weight", type=float, default=None, help="This node's share of any-node jobs (default 1; 0: none; at most 1000)."
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds of silence after which a node is gone (default 2; at most 86400).",
)
@click.option("--heartbeat", type=float, default=None, help="Seconds between heartbeats (default 0.5; 0.01 to 3600).")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    type=TAG,
    help="A tag of this runner (relay, room=kitchen; repeatable), added to runner.tags: jobs that require"
    " or prefer tags run by them.",
)
@click.option("--metrics", metavar="HOST:PORT", help="Serve Prometheus metrics at http://HOST:PORT/metrics.")
@click.pass_obj
@boundary
async def all_(
    obj: Any,
    group: str,
    node: str | None,
    all_nodes: bool,
    name: str | None,
    weight: float | None,
    timeout: float | None,
    heartbeat: float | None,
    tags: tuple[str, ...],
    metrics: str | None,
) -> None:
    """
    Run the jobs of GROUP here until SIGTERM / Ctrl-C (the runner daemon).

    Without -n or --all-nodes it runs every kind of job of this machine:
    the group's any-node jobs (shared with the other runners of the
    group), its all-node jobs, and the single-node jobs of this node
    (--name, by default the host name).  -n NODE runs only NODE's
    single-node jobs, --all-nodes only the all-node jobs.

    Says once on stderr what it serves: its name, the kinds, the jobs
    found, whether the group channel is authenticated, the status pages
    that announced themselves ('run web') and the metrics address.  Tells
    systemd when it is ready (READY=1 where NOTIFY_SOCKET is set) and
    pings its watchdog. --tag adds to the tags of runner.tags; the group
    hears them, and jobs that require a tag (run set --require-tag) run only
    on members that have it.  On SIGTERM it leaves the group, so the others take
    over its any-node jobs at once, and stops its jobs cleanly.
    """
    kind, node = kind_of(node, all_nodes)
    config = runner_config(obj.cfg["runner"], weight=weight, timeout=timeout, heartbeat=heartbeat).with_tags(tags)
    kinds: tuple[str, ...] = ALL_KINDS if kind == "any" else (kind,)  # no -n, no --all-nodes: all of this machine
    if kind != "single":
        node = name
    bind = parse_bind(metrics, 9100) if metrics else None
    await run_daemon(get_client(obj), kinds, group, node=node, cfg=config, metrics=bind, announce=_say)


@click.command(epilog=EXIT_CODES)
@click.option(
    "-g",
    "--group",
    "groups",
    multiple=True,
    shell_complete=complete_groups,
    help="Show this group only (repeat for more; default: every group).",
)
@click.option(
    "--bind",
    default="127.0.0.1:8765",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen (port 0: a free one); anything but loopback exposes the page (see the README's security notes).",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Allow acknowledging and deleting errors, for whoever presents the token of runner.web_token_file.",
)
@click.pass_obj
@boundary
async def web(obj: Any, groups: tuple[str, ...], bind: str, allow_actions: bool) -> None:
    """
    Serve the live status page of the runners until SIGTERM / Ctrl-C.

    \b
    /              jobs, group members, open errors, procedures (live)
    /job?...       one job: definition, state, output (live), runs
    /api/jobs, /api/members, /api/errors   the same as JSON
    /metrics       Prometheus metrics (distkv_run_*)

    Read-only unless --allow-actions is given; actions need the token in
    the file named by runner.web_token_file.  Listens on loopback only
    unless --bind says otherwise.  Tells systemd when it is ready, like
    'run all'.
    """
    # lazy: the web stack (starlette, hypercorn, jinja2, prometheus-client)
    # costs about 0.2 s at start-up, which no other command needs
    from distkv_ext.web import WebConfig, serve_web

    host, port = parse_bind(bind, 8765, any_port=True)
    config = WebConfig.load(obj.cfg["runner"], groups=groups, host=host, port=port, allow_actions=allow_actions)
    await serve_web(get_client(obj), config, announce=_say)
