"""``distkv client run``: runner entries and the runner daemon.

Thin by design: parse options, call `distkv_ext.run`, format output.
"""

import sys
import time

import asyncclick as click

from distkv_ext.codekit.cli.args import DROP, NO_DEFAULT, collect_variables, variable_options
from distkv_ext.codekit.cli.boundary import boundary, get_client
from distkv_ext.codekit.cli.common import EXIT_CODES, show_action
from distkv_ext.codekit.cli.complete import complete_groups, complete_jobs, complete_procedures
from distkv_ext.codekit.cli.output import emit, output_option, pick_format, stdout_of, table
from distkv_ext.codekit.cli.params import one_line_option
from distkv_ext.codekit.core.errors import NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.upstream import apply_client

from . import (
    NEW_JOB_DEFAULTS,
    OUTPUT_PREFIX,
    TRACEBACK_STREAM,
    auth_words,
    explain_job,
    follow_output,
    get_job,
    group_auth,
    hear_groups_as_configured,
    job_output,
    job_states,
    list_jobs,
    new_group_key,
    remove_job,
    store_job,
)
from ._cli_daemon import all_, web
from ._cli_opts import (
    PROCEDURE,
    WHEN,
    group_options,
    job_number,
    kind_of,
    listen_option,
    next_start_text,
    plain_job,
    short,
    state_word,
)

# repair DistKV's `distkv client` before its group callback connects
apply_client()


def _prefixes(obj):
    r = obj.cfg["runner"]
    return r["prefix"], r["state"]


def _output_prefix(obj):
    return obj.cfg["runner"].get("output", OUTPUT_PREFIX)


def _latest(outputs):
    """{node: output of its latest run}."""
    latest = {}
    for o in outputs:
        latest[o.get("node")] = o
    return latest


def _last_lines(outputs, n=5):
    """The last ``n`` lines of the latest run(s) (without a traceback):
    one list per node."""
    return {
        node: [t for _, s, t in (o.get("lines") or ()) if s != TRACEBACK_STREAM][-n:]
        for node, o in _latest(outputs).items()
    }


def _tracebacks(outputs):
    """{node: the traceback lines of its latest run}, if that run failed."""
    res = {}
    for node, o in _latest(outputs).items():
        lines = [t for _, s, t in (o.get("lines") or ()) if s == TRACEBACK_STREAM]
        if lines and o.get("ok") is False:
            res[node] = lines
    return res


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
@variable_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def set_(
    obj,
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
):
    """
    Create or change the job PATH of a group.

    The procedure must be stored, and the job's data (-v/-e/-p NAME VALUE)
    with the procedure's defaults must supply its variables; else nothing
    is written.  Options not given keep their stored values.
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
        return new

    prefix, _ = _prefixes(obj)
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
    value, _ = await get_job(get_client(obj), kind, group, path, node=node, prefix=_prefixes(obj)[0])
    emit(obj, plain_job(value), output)


@cli.command("list", epilog=EXIT_CODES)
@click.option("-g", "--group", default=None, shell_complete=complete_groups, help="Only this group.")
@listen_option
@output_option("table", "yaml", "json")
@click.pass_obj
@boundary
async def list_(obj, group, listen, output):
    """
    List the jobs (of GROUP, or all) with where they run and their state.

    A table on a terminal (path, kind, group, code, node, state, next
    start, last error or else the last line of output); YAML in a pipe.
    Groups whose runners speak without a group key are named on stderr
    (in YAML/JSON: each job's group_auth).  A job whose runner is not
    heard in its group (listened to for at most runner.timeout) shows as
    'runner gone' (in YAML/JSON: runner_gone lists those nodes).
    """
    prefix, state_prefix = _prefixes(obj)
    now = time.time()
    rows = []
    auth = {}
    jobs = [
        j
        async for j in list_jobs(
            get_client(obj), group, prefix=prefix, state_prefix=state_prefix, output_prefix=_output_prefix(obj)
        )
    ]
    expect: dict = {}
    for j in jobs:
        expect.setdefault((j["kind"], j["group"], j["node"]), set()).update(_holders(j["kind"], j["node"], j["states"]))
    heard = await _hear(obj, expect) if listen else {}
    for j in jobs:
        running = sorted(s.get("node") for s in j["states"].values() if s.get("node"))
        g = heard.get((j["kind"], j["group"], j["node"]))
        gone = [n for n in running if g is not None and g.gone(n)]
        rows.append(
            {
                "path": str(j["path"]),
                "kind": j["kind"],
                "group": j["group"],
                "node": j["node"],
                "code": plain_job(j["value"])["code"],
                "running_on": running,
                "runner_gone": gone,
                "state": state_word(j["states"], gone),
                "next": next_start_text(j["states"], now),
                "error": next((s.get("error") for s in j["states"].values() if s.get("error")), None),
                "last_output": j["last_output"],
            }
        )
        key = (j["kind"], j["group"], j["node"])
        if key not in auth:
            auth[key] = await group_auth(get_client(obj), *key, state_prefix=state_prefix)
        rows[-1]["group_auth"] = None if auth[key] is None else auth[key]["auth"]
    if group is not None and not rows:
        raise NotFound("job", group, f"no jobs in group {group}")
    fmt = pick_format(output, stdout_of(obj), table_ok=True)
    if fmt == "table":
        for (kind, grp, nd), summary in sorted(auth.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
            if summary is not None and summary["auth"] in ("unauthenticated", "mixed"):
                of = f" of {nd}" if nd else ""
                print(f"warning: {kind}-node group {grp}{of}: {auth_words(summary)}", file=sys.stderr)
        table(
            obj,
            ["PATH", "KIND", "GROUP", "CODE", "NODE", "STATE", "NEXT", "LAST ERROR / OUTPUT"],
            [
                [
                    r["path"],
                    r["kind"],
                    r["group"],
                    r["code"],
                    " ".join(r["running_on"]) or (r["node"] or ""),
                    r["state"],
                    r["next"],
                    short(r["error"] or r["last_output"] or ""),
                ]
                for r in rows
            ],
        )
    else:
        emit(obj, rows, fmt)


def _holders(kind, node, states):
    """The nodes whose runners matter for a job: those its states say run
    it, and a single-node job's NODE."""
    res = {s.get("node") for s in states.values() if s.get("node")}
    if kind == "single" and node:
        res.add(node)
    return res


async def _hear(obj, expect):
    """Listen to the groups of ``expect`` ((kind, group, node) -> nodes)."""
    return await hear_groups_as_configured(get_client(obj), expect, obj.cfg.get("runner"))


async def _job_view(obj, kind, group, path, node):
    """(entry value, states, last output lines, tracebacks) of a job; `NotFound` if none."""
    client = get_client(obj)
    prefix, state_prefix = _prefixes(obj)
    value, _ = await get_job(client, kind, group, path, node=node, prefix=prefix)
    states = await job_states(client, kind, group, path, node=node, prefix=state_prefix)
    outputs = await job_output(client, kind, group, path, node=node, prefix=_output_prefix(obj))
    return value, states, _last_lines(outputs), _tracebacks(outputs)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def state(obj, path, group, node, all_nodes, output):
    """Show the state of job PATH (all-node jobs: one per node)."""
    kind, node = kind_of(node, all_nodes)
    _, states, last, _ = await _job_view(obj, kind, group, path, node)
    if kind != "all":
        res = dict(states.get("", {}))
        res["last_output"] = next(iter(last.values()), [])
    else:
        res = {n: dict(s, last_output=last.get(n, [])) for n, s in states.items()}
    emit(obj, res, output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@listen_option
@output_option("text", "yaml", "json", default="text")
@click.pass_obj
@boundary
async def why(obj, path, group, node, all_nodes, listen, output):
    """
    Why job PATH is or is not running: its target, backoff, last error
    (with the traceback of the run that failed), which node holds it, and
    when it starts next; and how its group's runners speak (with a group
    key or unauthenticated) and whether they run only signed code.

    The store says which node started the job; whether that node's
    runner is still alive only its group can tell: 'run why' listens to
    it (at most runner.timeout, about one heartbeat when all is well) and
    says "that runner is gone" for a job whose runner was not heard.
    """
    kind, node = kind_of(node, all_nodes)
    value, states, last, tracebacks = await _job_view(obj, kind, group, path, node)
    states = states or {"": {}}
    heard = await _hear(obj, {(kind, group, node): _holders(kind, node, states)}) if listen else {}
    g = heard.get((kind, group, node))
    res = {n or "": explain_job(value, s, heard=g, kind=kind, node=node or n or None) for n, s in states.items()}
    words = auth_words(await group_auth(get_client(obj), kind, group, node, state_prefix=_prefixes(obj)[1]))
    for n, r in res.items():
        r["last_output"] = last.get(n or (r["running_on"] or r["last_node"]), [])
        r["traceback"] = tracebacks.get(n or r["last_node"], []) if r["last_error"] else []
        r["group"] = words
    if output != "text":
        emit(obj, res if kind == "all" else res[""], output)
        return
    out = stdout_of(obj)
    v = plain_job(value)
    print(f"job {as_path(path)} ({kind}-node, group {group}) runs {v['code']}", file=out)
    if words:
        print(f"  group: {words}", file=out)
    for n, r in sorted(res.items()):
        who = f"on {n}: " if n else ""
        print(f"  {who}{r['verdict']}", file=out)
        if r["last_error"]:
            print(f"  last error ({r['errors_in_a_row']} in a row): {r['last_error']}", file=out)
        if r["runner_says"]:
            print(f"  runner says: {r['runner_says']}", file=out)
        if r["traceback"]:
            print("  traceback of the last run:", file=out)
            for line in r["traceback"]:
                print(f"    {line}", file=out)
        if r["last_output"]:
            print("  last output:", file=out)
            for line in r["last_output"]:
                print(f"    {line}", file=out)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_jobs)
@group_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def delete(obj, path, group, node, all_nodes, output):
    """Delete the job PATH; its runner stops it."""
    kind, node = kind_of(node, all_nodes)
    await remove_job(get_client(obj), kind, group, path, node=node, prefix=_prefixes(obj)[0])
    show_action(obj, as_path(path), "deleted", output)


@cli.command(epilog=EXIT_CODES)
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
    runner.output_lines / output_runs).  Text output prefixes each line with
    the node and run when more than one is shown.
    """
    kind, node = kind_of(node, all_nodes)
    client = get_client(obj)
    prefix, _ = _prefixes(obj)
    await get_job(client, kind, group, path, node=node, prefix=prefix)  # NotFound

    def wanted(o):
        return (from_ is None or o.get("node") == from_) and (run_no is None or o.get("run") == run_no)

    out = stdout_of(obj)
    outputs = [
        o for o in await job_output(client, kind, group, path, node=node, prefix=_output_prefix(obj)) if wanted(o)
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
    async for o, lines in follow_output(client, kind, group, path, node=node, prefix=_output_prefix(obj)):
        if wanted(o):
            show(o, lines)


cli.add_command(all_)
cli.add_command(web)
