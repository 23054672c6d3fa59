"""``distkv client run``: runner entries and the runner daemon.

Thin by design: parse options, call `distkv_ext.run`, format output.
"""

import asyncclick as click

from distkv_ext.codekit.cli.args import DROP, NO_DEFAULT, collect_variables, variable_options
from distkv_ext.codekit.cli.boundary import boundary, get_client
from distkv_ext.codekit.cli.common import EXIT_CODES, show_action
from distkv_ext.codekit.cli.complete import complete_jobs, complete_procedures
from distkv_ext.codekit.cli.output import emit, output_option
from distkv_ext.codekit.cli.params import one_line_option
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.upstream import apply_client

from . import (
    NEW_JOB_DEFAULTS,
    get_job,
    new_group_key,
    remove_job,
    resume_job,
    store_job,
)
from ._cli_calendar import calendar_edit, calendar_options
from ._cli_daemon import all_, web
from ._cli_opts import (
    PROCEDURE,
    WHEN,
    group_options,
    job_number,
    kind_of,
    plain_job,
    prefixes_of,
)
from ._cli_status import list_, logs, next_, state, why

# repair DistKV's `distkv client` before its group callback connects
apply_client()


@click.group(short_help="Run stored procedures on one, any or all nodes.", epilog=EXIT_CODES)
async def cli():
    """
    Runner entries point at a stored procedure and say where and when it
    runs; 'run all -g GROUP' on each machine is the daemon that runs them.

    \b
    Jobs of three kinds, each in a group (-g GROUP, always required):
    without -n: any-node jobs (one live node of the group runs each);
    -n NODE:    single-node jobs (only NODE runs them);
    --all-nodes (or -n -): all-node jobs (every member runs each).

    'run all -g GROUP' runs all three kinds of this machine; 'run web'
    serves a live status page of the runners, their jobs and errors.
    """


@cli.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(dir_okay=False))
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def keygen(obj, file, output):
    """
    Make a group key: write 32 random bytes (base64) to the new FILE
    (mode 0600) and print the key's id.

    Copy FILE to every runner of the group and name it as runner.group_key
    in their configuration: then every group message is authenticated.
    An existing FILE is not overwritten (exit status 4).  Needs no DistKV
    server.
    """
    emit(obj, {"file": file, "key_id": new_group_key(file)}, output)


@cli.command("set", epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@click.option("-c", "--code", type=PROCEDURE, shell_complete=complete_procedures, help="Path of the procedure to run.")
@click.option(
    "-t",
    "--time",
    "when",
    type=WHEN,
    help="When to start: now, never, seconds from now, or an ISO time (100 years at most).",
)
@click.option(
    "-r", "--repeat", type=job_number("repeat"), help="Seconds after a successful run to run again (0: don't)."
)
@click.option("-d", "--delay", type=job_number("delay"), help="Seconds before retrying after an error (new jobs: 10).")
@click.option(
    "-b",
    "--backoff",
    type=job_number("backoff"),
    help="Factor (1 to 1000) by which each further retry waits longer (new jobs: 2).",
)
@click.option("--max-delay", type=job_number("max_delay"), help="Longest wait between retries (new jobs: 600).")
@click.option("--max-tries", type=job_number("max_tries"), help="Give up after this many errors in a row (0: never).")
@click.option(
    "-k", "--ok-after", type=job_number("ok_after"), help="A run that lasts this long is healthy (resets the backoff)."
)
@click.option("-i", "--info", callback=one_line_option, help="One line describing the job.")
@click.option(
    "--pin/--no-pin", default=None, help="Run only the procedure and its modules as stored now (their SHA-256)."
)
@calendar_options
@variable_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def set_(
    obj,
    /,
    path,
    group,
    node,
    all_nodes,
    code,
    when,
    repeat,
    delay,
    backoff,
    max_delay,
    max_tries,
    ok_after,
    info,
    pin,
    values,
    evals,
    paths,
    output,
    **calendar,
):
    """
    Create or change the job PATH of a group.

    The procedure must be stored, and the job's data (-v/-e/-p NAME VALUE)
    with the procedure's defaults must supply its variables; else nothing
    is written.  Options not given keep their stored values.

    A calendar job starts by --cron or --at instead of -t/-r, in its time
    zone (--tz); 'run next' shows its next starts.
    """
    kind, node = kind_of(node, all_nodes)
    variables = collect_variables(values, evals, paths, markers=True)

    def edit(old):
        if old is None:
            if code is None:
                raise click.UsageError(f"{path} is new: give its procedure with -c CODE")
            old = dict(NEW_JOB_DEFAULTS)
        new = dict(old)
        if code is not None:
            new["code"] = code
        data = dict(new.get("data") or {})
        for k, v in variables:
            if v is DROP or v is NO_DEFAULT:
                data.pop(k, None)
            else:
                data[k] = v
        new["data"] = data
        for k, v in (
            ("repeat", repeat),
            ("delay", delay),
            ("backoff", backoff),
            ("max_delay", max_delay),
            ("max_tries", max_tries),
            ("ok_after", ok_after),
            ("info", info),
        ):
            if v is not None:
                new[k] = v
        if when is not None:
            new["target"] = when
        if pin is not None:
            new["pin"] = True if pin else None
        calendar_edit(new, calendar, obj.cfg.get("runner"), timed=when is not None or repeat is not None)
        return new

    prefix, _ = prefixes_of(obj)
    action, _ = await store_job(
        get_client(obj),
        kind,
        group,
        path,
        edit,
        node=node,
        prefix=prefix,
        proc_prefix=obj.cfg["codes"]["prefix"],
        module_prefix=obj.cfg["modules"]["prefix"],
    )
    show_action(obj, as_path(path), action, output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def get(obj, path, group, node, all_nodes, output):
    """Show the runner entry PATH of a group."""
    kind, node = kind_of(node, all_nodes)
    value, _ = await get_job(get_client(obj), kind, group, path, node=node, prefix=prefixes_of(obj)[0])
    emit(obj, plain_job(value), output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def delete(obj, path, group, node, all_nodes, output):
    """Delete the job PATH; its runner stops it."""
    kind, node = kind_of(node, all_nodes)
    await remove_job(get_client(obj), kind, group, path, node=node, prefix=prefixes_of(obj)[0])
    show_action(obj, as_path(path), "deleted", output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def resume(obj, path, group, node, all_nodes, output):
    """Start the quarantined job PATH again.

    A job whose code stalled its runners (kept their event loop busy)
    runner.quarantine_after times in a row is not started again; 'run why'
    says so. This lifts the quarantine: a runner starts the job at once.
    """
    kind, node = kind_of(node, all_nodes)
    prefix, state_prefix = prefixes_of(obj)
    done = await resume_job(get_client(obj), kind, group, path, node=node, prefix=prefix, state_prefix=state_prefix)
    show_action(obj, as_path(path), "resumed" if any(done.values()) else "not quarantined", output)


for command in (list_, state, why, next_, logs, all_, web):
    cli.add_command(command)
