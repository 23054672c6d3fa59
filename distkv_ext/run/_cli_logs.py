"""``run logs``: what a job printed and logged (registered by `client`)."""

import asyncclick as click

from distkv_ext.codekit.cli.boundary import boundary, get_client
from distkv_ext.codekit.cli.common import EXIT_CODES
from distkv_ext.codekit.cli.complete import complete_jobs
from distkv_ext.codekit.cli.output import emit, output_option, stdout_of
from distkv_ext.codekit.core.errors import NotFound
from distkv_ext.codekit.core.paths import as_path

from . import TRACEBACK_STREAM, follow_output, get_job, job_output
from ._cli_opts import group_options, kind_of, output_prefix_of, prefixes_of

__all__ = ["logs"]


@click.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@click.option("--from", "from_", metavar="NODE", help="Only output of runs on NODE.")
@click.option("--run", "run_no", type=click.IntRange(min=1), help="Only run number N (see 'run state': runs).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output, from whichever node runs the job.")
@output_option("text", "yaml", "json", default="text")
@click.pass_obj
@boundary
async def logs(obj, path, group, node, all_nodes, from_, run_no, follow, output):
    """
    Show what job PATH printed and logged (stdout, stderr, log records);
    a failed run ends with its traceback (marked '! ', as stderr).

    The runners keep the last lines of the last runs of every job (see
    runner.output_lines / output_runs); a run that printed and logged
    nothing keeps nothing.  Text output prefixes each line with
    the node and run when more than one is shown.
    """
    kind, node = kind_of(node, all_nodes)
    client = get_client(obj)
    prefix, _ = prefixes_of(obj)
    await get_job(client, kind, group, path, node=node, prefix=prefix)  # NotFound

    def wanted(o):
        return (from_ is None or o.get("node") == from_) and (run_no is None or o.get("run") == run_no)

    out = stdout_of(obj)
    outputs = [
        o for o in await job_output(client, kind, group, path, node=node, prefix=output_prefix_of(obj)) if wanted(o)
    ]
    if not outputs and not follow and (from_ is not None or run_no is not None):
        picked = " and ".join(x for x in (from_ and f"from node {from_}", run_no and f"of run {run_no}") if x)
        raise NotFound("output", as_path(path), f"no output of job {as_path(path)} {picked} is stored")
    if output != "text" and not follow:
        emit(obj, outputs, output)
        return
    many = len({(o.get("node"), o.get("run")) for o in outputs}) > 1 or kind == "all" or follow

    def show(o, lines):
        for _, stream, text in lines:
            tag = f"[{o.get('node')} #{o.get('run')}] " if many else ""
            print(f"{tag}{'! ' if stream in ('stderr', TRACEBACK_STREAM) else ''}{text}", file=out, flush=True)

    if not follow:
        for o in outputs:
            show(o, o.get("lines") or ())
        return
    async for o, lines in follow_output(client, kind, group, path, node=node, prefix=output_prefix_of(obj)):
        if wanted(o):
            show(o, lines)
