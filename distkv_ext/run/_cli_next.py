"""``run next``: the next start times of a job (registered by `client`)."""

import sys

import asyncclick as click

from distkv_ext.codekit.cli.boundary import boundary, get_client
from distkv_ext.codekit.cli.common import EXIT_CODES
from distkv_ext.codekit.cli.complete import complete_jobs
from distkv_ext.codekit.cli.output import emit, output_option, stdout_of
from distkv_ext.codekit.core.paths import as_path

from . import MAX_NEXT_STARTS, job_next_starts, job_pause, pause_prefix
from ._cli_opts import kind_of, node_options, prefixes_of

__all__ = ["next_"]


@click.command("next", epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@node_options
@click.option(
    "-n",
    "--count",
    type=click.IntRange(1, MAX_NEXT_STARTS),
    default=5,
    show_default=True,
    help=f"How many start times (at most {MAX_NEXT_STARTS}).",
)
@output_option("text", "yaml", "json", default="text")
@click.pass_obj
@boundary
async def next_(obj, path, group, node, all_nodes, count, output):
    """
    Show the next start times of job PATH: ISO-8601 with the UTC offset,
    in the job's time zone (a job without a calendar: this machine's), its
    jitter included; one a line, or a list (-o json / yaml).

    A calendar job (cron or sun time) shows its next slots, also while it
    runs; other jobs their next start and, if they repeat, the repeats
    after it (as if each run took no time).  A job that does not start
    again shows nothing (-o json: []) and says why on stderr; a paused
    job shows its times and says on stderr that it is paused.  Note: -n is
    the COUNT here; the node of a single-node job is --node NODE.
    """
    kind, node = kind_of(node, all_nodes)
    prefix, state_prefix = prefixes_of(obj)
    res = await job_next_starts(
        get_client(obj), kind, group, path, node=node, count=count, prefix=prefix, state_prefix=state_prefix
    )
    if not res.times:
        print(f"job {as_path(path)} does not start again: {res.reason}", file=sys.stderr)
    paused = await job_pause(
        get_client(obj), kind, group, path, node=node, pause_prefix=pause_prefix(obj.cfg.get("runner"))
    )
    if paused and res.times:
        print(f"job {as_path(path)}: these starts happen only once it is resumed: {paused}", file=sys.stderr)
    if output != "text":
        emit(obj, res.iso(), output)
        return
    out = stdout_of(obj)
    for t in res.iso():
        print(t, file=out)
