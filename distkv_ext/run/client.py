"""``distkv client run``: runner entries and the runner daemon.

Thin by design: parse options, call `distkv_ext.run`, format output.
"""

import sys

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
    calendar_defaults,
    get_job,
    job_pause,
    new_group_key,
    pause_group,
    pause_job,
    pause_prefix,
    remove_job,
    resume_job,
    store_job,
    trigger_job,
    unpause_group,
    unpause_job,
)
from ._cli_daemon import all_, web
from ._cli_logs import logs
from ._cli_next import next_
from ._cli_opts import (
    PROCEDURE,
    WHEN,
    group_options,
    job_number,
    kind_of,
    plain_job,
    prefixes_of,
)
from ._cli_sched import apply_schedule, schedule_options
from ._cli_status import list_, state, why

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
@schedule_options
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
    schedule,
):
    """
    Create or change the job PATH of a group.

    The procedure must be stored, and the job's data (-v/-e/-p NAME VALUE)
    with the procedure's defaults must supply its variables; else nothing
    is written.  Options not given keep their stored values.

    \b
    A job starts at a time (-t) and may repeat (-r), or it follows a
    calendar: --cron '30 6 * * 1-5' or --at sunset-15m, in its time zone
    (--tz); 'run next' shows its next starts (see the README, 'Scheduling').
    """
    kind, node = kind_of(node, all_nodes)
    variables = collect_variables(values, evals, paths, markers=True)

    def cal_defaults():
        return calendar_defaults(obj.cfg.get("runner"))

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
        apply_schedule(new, schedule, cal_defaults, interval=when is not None or repeat is not None)
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
    await remove_job(
        get_client(obj),
        kind,
        group,
        path,
        node=node,
        prefix=prefixes_of(obj)[0],
        pause_prefix=pause_prefix(obj.cfg.get("runner")),
    )
    show_action(obj, as_path(path), "deleted", output)


def _which(path, all_jobs):
    """PATH or --all: exactly one of them (else a usage error)."""
    if all_jobs and path is not None:
        raise click.UsageError("give either PATH or --all, not both")
    if not all_jobs and path is None:
        raise click.UsageError("give the PATH of a job, or --all for every job of the group")


def _group_label(kind, group, node):
    return f"group {group} ({node}'s single-node jobs)" if kind == "single" else f"group {group} ({kind}-node jobs)"


all_option = click.option(
    "--all",
    "all_jobs",
    is_flag=True,
    help="The whole group: its jobs of the kind that -n / --all-nodes select (none: any-node jobs).",
)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", required=False, shell_complete=complete_jobs)
@group_options
@all_option
@click.option("-m", "--reason", callback=one_line_option, help="Why (one line); 'run why' shows it.")
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def pause(obj, path, group, node, all_nodes, all_jobs, reason, output):
    """
    Pause the job PATH, or with --all every job of the group: its runners
    start no new run of it until 'run resume'. A run in progress goes on
    to its end. The job's entry is not changed; the pause is stored apart
    (.distkv pause ...) with who paused it, when, and why (-m).

    \b
    --all pauses the group's jobs of one kind, as the other commands
    select it: without -n its any-node jobs; -n NODE: NODE's single-node
    jobs of the group; --all-nodes: its all-node jobs. Jobs added later
    are paused too. 'run trigger' still starts one run of a paused job.
    """
    _which(path, all_jobs)
    kind, node = kind_of(node, all_nodes)
    client, prefix, pprefix = get_client(obj), prefixes_of(obj)[0], pause_prefix(obj.cfg.get("runner"))
    if all_jobs:
        done = await pause_group(client, kind, group, node=node, reason=reason, prefix=prefix, pause_prefix=pprefix)
        show_action(obj, _group_label(kind, group, node), "paused" if done else "already paused", output)
        return
    done = await pause_job(client, kind, group, path, node=node, reason=reason, prefix=prefix, pause_prefix=pprefix)
    show_action(obj, as_path(path), "paused" if done else "already paused", output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", required=False, shell_complete=complete_jobs)
@group_options
@all_option
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def resume(obj, path, group, node, all_nodes, all_jobs, output):
    """
    Let the paused or quarantined job PATH start again; with --all, lift
    the pause of the whole group ('run pause --all'; jobs paused on their
    own stay paused).

    A paused job goes on with its schedule: a start that fell due while
    it was paused happens at once (one, however many were missed; for a
    calendar job, as its --catch-up and --catch-up-window say).
    A job whose code stalled its runners (kept their event loop busy)
    runner.quarantine_after times in a row is not started again; 'run why'
    says so. This lifts the quarantine: a runner starts the job at once.
    Prints 'resumed' if there was something to lift, else 'not paused or
    quarantined'.
    """
    _which(path, all_jobs)
    kind, node = kind_of(node, all_nodes)
    prefix, state_prefix = prefixes_of(obj)
    client, pprefix = get_client(obj), pause_prefix(obj.cfg.get("runner"))
    if all_jobs:
        done = await unpause_group(client, kind, group, node=node, prefix=prefix, pause_prefix=pprefix)
        show_action(obj, _group_label(kind, group, node), "resumed" if done else "not paused", output)
        return
    paused = await unpause_job(client, kind, group, path, node=node, prefix=prefix, pause_prefix=pprefix)
    done = await resume_job(client, kind, group, path, node=node, prefix=prefix, state_prefix=state_prefix)
    lifted = paused["unpaused"] or any(done.values())
    show_action(obj, as_path(path), "resumed" if lifted else "not paused or quarantined", output)
    if paused["group_paused"]:
        print(
            f"note: {as_path(path)} stays paused: its group is paused; 'run resume -g {group} --all' lifts that",
            file=sys.stderr,
        )


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def trigger(obj, path, group, node, all_nodes, output):
    """
    Run the job PATH once, now, without changing its schedule: its entry
    (target, repeat, calendar) is not written, and the next scheduled
    start stays where it was (a repeat counts from the end of the latest
    run, as always). A paused job runs once too and stays paused; a job
    that never ran works the same. All-node jobs run once on every member.

    A job that runs right now is not triggered (exit status 4): trigger
    it again when that run has ended. Nor is a quarantined one ('run
    resume' first).
    """
    kind, node = kind_of(node, all_nodes)
    prefix, state_prefix = prefixes_of(obj)
    client, pprefix = get_client(obj), pause_prefix(obj.cfg.get("runner"))
    await trigger_job(client, kind, group, path, node=node, prefix=prefix, state_prefix=state_prefix)
    show_action(obj, as_path(path), "triggered", output)
    if await job_pause(client, kind, group, path, node=node, pause_prefix=pprefix):
        print(f"note: {as_path(path)} is paused: it runs once, then stays paused", file=sys.stderr)


for command in (list_, state, why, next_, logs, all_, web):
    cli.add_command(command)
