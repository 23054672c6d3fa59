"""The commands that show what the runners do: ``run list``, ``run
state`` and ``run why`` (registered by `client`; ``run logs`` and ``run
next`` have modules of their own)."""

import sys
import time

import asyncclick as click

from distkv_ext.codekit.cli.boundary import boundary, get_client
from distkv_ext.codekit.cli.common import EXIT_CODES
from distkv_ext.codekit.cli.complete import complete_groups, complete_jobs
from distkv_ext.codekit.cli.output import emit, output_option, pick_format, stdout_of, table
from distkv_ext.codekit.core.errors import NotFound
from distkv_ext.codekit.core.paths import as_path

from . import (
    TRACEBACK_STREAM,
    all_pauses,
    auth_words,
    explain_job,
    get_job,
    group_auth,
    hear_groups_as_configured,
    job_name,
    job_output,
    job_pause,
    job_states,
    list_jobs,
    next_starts,
    pause_of,
    pause_prefix,
    pauses_by_group,
    placement_problem,
    runner_subpath,
)
from ._cli_opts import (
    group_options,
    kind_of,
    listen_option,
    next_start_text,
    output_prefix_of,
    plain_job,
    prefixes_of,
    short,
    state_word,
)

__all__ = ["list_", "state", "why"]


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


@click.command("list", epilog=EXIT_CODES)
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
    'runner gone' (in YAML/JSON: runner_gone lists those nodes).  A job
    its tags keep from running says why ('no live member has tag relay';
    in YAML/JSON: placement).
    """
    prefix, state_prefix = prefixes_of(obj)
    now = time.time()
    rows = []
    auth = {}
    jobs = [
        j
        async for j in list_jobs(
            get_client(obj), group, prefix=prefix, state_prefix=state_prefix, output_prefix=output_prefix_of(obj)
        )
    ]
    expect: dict = {}
    needs: dict = {}
    for j in jobs:
        expect.setdefault((j["kind"], j["group"], j["node"]), set()).update(_holders(j["kind"], j["node"], j["states"]))
        _need_tags(needs, (j["kind"], j["group"], j["node"]), j["value"])
    heard = await _hear(obj, expect, needs) if listen else {}
    pauses = await all_pauses(get_client(obj), pause_prefix=pause_prefix(obj.cfg.get("runner")))
    for j in jobs:
        running = sorted(s.get("node") for s in j["states"].values() if s.get("node"))
        g = heard.get((j["kind"], j["group"], j["node"]))
        gone = [n for n in running if g is not None and g.gone(n)]
        paused = pause_of(pauses_by_group(pauses, runner_subpath(j["kind"], j["group"], j["node"])), tuple(j["path"]))
        held_back = _held_back(j, g)
        rows.append(
            {
                "path": str(j["path"]),
                "kind": j["kind"],
                "group": j["group"],
                "node": j["node"],
                "code": plain_job(j["value"])["code"],
                "running_on": running,
                "runner_gone": gone,
                "state": _with_placement(state_word(j["states"], gone, paused=bool(paused)), held_back, j["kind"]),
                "paused": paused,
                "placement": sorted(set(held_back.values())),
                "next": _next_text(j, now) or next_start_text(j["states"], now),
                # the error of a run that is over: a job running again has none yet
                "error": next((s["error"] for s in j["states"].values() if s.get("error") and not s.get("node")), None),
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


def _held_back(job, heard):
    """{state's node ('' but for all-node jobs): why the job's tags keep it
    from running there} (`placement_problem`)."""
    res = {}
    for n, s in (job["states"] or {"": {}}).items():
        why = placement_problem(job["value"], s, heard=heard, kind=job["kind"], node=job["node"] or n or None)
        if why:
            res[n] = why
    return res


def _with_placement(word, held_back, kind):
    """The state column, saying what keeps the job from running by its tags."""
    if not held_back:
        return word
    if kind != "all":
        return next(iter(held_back.values()))
    return f"{word} ({'; '.join(held_back[n] for n in sorted(held_back))})"


def _next_text(j, now):
    """The next start of a calendar job, in its zone ("" for other jobs:
    their state says, `next_start_text`)."""
    v = j["value"]
    if not isinstance(v, dict) or not (v.get("cron") or v.get("at")):
        return ""
    states = j["states"]
    state = states[sorted(states)[0]] if states else None
    try:
        res = next_starts(v, state, job=job_name(j["path"]), now=now, count=1)
    except (TypeError, ValueError):
        return ""
    return res.iso()[0] if res.times else ""


def _holders(kind, node, states):
    """The nodes whose runners matter for a job: those its states say run
    it, and a single-node job's NODE."""
    res = {s.get("node") for s in states.values() if s.get("node")}
    if kind == "single" and node:
        res.add(node)
    return res


def _need_tags(needs, ref, value):
    """Note in ``needs`` ({group: [tag sets]}) the tags the job ``value`` requires."""
    req = value.get("require_tags") if isinstance(value, dict) else None
    if isinstance(req, (list, tuple)) and req:
        needs.setdefault(ref, []).append([t for t in req if isinstance(t, str)])


async def _hear(obj, expect, needs=None):
    """Listen to the groups of ``expect`` ((kind, group, node) -> nodes),
    and until a member with each set of tags of ``needs`` is heard."""
    return await hear_groups_as_configured(get_client(obj), expect, obj.cfg.get("runner"), needs)


async def _job_view(obj, kind, group, path, node):
    """(entry value, states, last output lines, tracebacks) of a job; `NotFound` if none."""
    client = get_client(obj)
    prefix, state_prefix = prefixes_of(obj)
    value, _ = await get_job(client, kind, group, path, node=node, prefix=prefix)
    states = await job_states(client, kind, group, path, node=node, prefix=state_prefix)
    outputs = await job_output(client, kind, group, path, node=node, prefix=output_prefix_of(obj))
    return value, states, _last_lines(outputs), _tracebacks(outputs)


@click.command(epilog=EXIT_CODES)
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


@click.command(epilog=EXIT_CODES)
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
    needs: dict = {}
    _need_tags(needs, (kind, group, node), value)
    heard = await _hear(obj, {(kind, group, node): _holders(kind, node, states)}, needs) if listen else {}
    g = heard.get((kind, group, node))
    paused = await job_pause(
        get_client(obj), kind, group, path, node=node, pause_prefix=pause_prefix(obj.cfg.get("runner"))
    )
    job = job_name(as_path(path))
    res = {
        n or "": explain_job(value, s, heard=g, kind=kind, node=node or n or None, paused=paused, job=job)
        for n, s in states.items()
    }
    words = auth_words(await group_auth(get_client(obj), kind, group, node, state_prefix=prefixes_of(obj)[1]))
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
        if r["paused"] and not r["verdict"].startswith("paused"):
            print(f"  {r['paused']}", file=out)
        if r["last_error"]:
            print(f"  last error ({r['errors_in_a_row']} in a row): {r['last_error']}", file=out)
        if r["runner_says"]:
            print(f"  runner says: {r['runner_says']}", file=out)
        if r.get("calendar"):
            nxt = f"; next start {r['next_start_text']}" if r.get("next_start_text") else ""
            print(f"  calendar: {r['calendar']}{nxt}", file=out)
        if r.get("skipped"):
            print(f"  skipped starts: {r['skipped']} (last: {r['skip_note']})", file=out)
        if r["traceback"]:
            print("  traceback of the last run:", file=out)
            for line in r["traceback"]:
                print(f"    {line}", file=out)
        if r["last_output"]:
            print("  last output:", file=out)
            for line in r["last_output"]:
                print(f"    {line}", file=out)
