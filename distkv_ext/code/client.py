"""``distkv client code``: manage procedures stored in DistKV.

Thin by design: parse options, call `distkv_ext.code`, format output.
Errors are mapped to exit statuses by `distkv_ext.codekit.cli.boundary`.
"""

import asyncclick as click
from moat.util import NotGiven, P

from distkv_ext.codekit.cli.args import DROP, NO_DEFAULT, collect_variables, positional_values, variable_options
from distkv_ext.codekit.cli.boundary import boundary, get_client
from distkv_ext.codekit.cli.common import (
    EXIT_CODES,
    add_history_commands,
    depth_option,
    diff_options,
    script_for_get,
    show_action,
    show_diff,
    show_entry,
    to_option,
)
from distkv_ext.codekit.cli.complete import complete_files, complete_procedures
from distkv_ext.codekit.cli.output import emit, output_option, pick_format, stdout_of, table
from distkv_ext.codekit.cli.params import module_names, one_line_option, variable_names
from distkv_ext.codekit.cli.signing import signing_key_of
from distkv_ext.codekit.core.errors import CompileError, NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.signing import key_id
from distkv_ext.codekit.core.source import read_source
from distkv_ext.codekit.upstream import apply_client

from . import (
    call_procedure,
    get_procedure,
    list_procedures,
    mode_fields,
    mode_of,
    new_signing_key,
    store_procedure,
)
from ._cli_deploy import deploy

# repair DistKV's `distkv client` before its group callback connects
apply_client()


def _prefix(obj):
    return obj.cfg["codes"]["prefix"]


@click.group(short_help="Manage procedures stored in DistKV.", epilog=EXIT_CODES)
async def cli():
    """
    Store Python procedures in DistKV and call them by name.

    A procedure is a function body ('return 42' is one), stored at a path
    below .distkv.code.proc with its mode (sync, thread, async, or process
    mode: in a child process), its
    variables and their defaults, and the modules it requires.
    """


@cli.command("set", epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_procedures)
@click.option(
    "-s", "--script", metavar="FILE", shell_complete=complete_files, help="File with the code; '-': standard input."
)
@click.option("--async", "mode", flag_value="async", help="Async code (awaited).")
@click.option("--sync", "mode", flag_value="sync", help="Sync code (runners run it in a worker thread).")
@click.option("--thread", "mode", flag_value="thread", help="Sync code, run in a worker thread.")
@click.option(
    "--process", "mode", flag_value="process", help="Sync code, run in a child process of the runner (killable)."
)
@click.option("--process-async", "mode", flag_value="process-async", help="Async code, run in a child process.")
@click.option("-i", "--info", callback=one_line_option, help="One line describing the procedure.")
@variable_options
@click.option(
    "--var",
    "required",
    multiple=True,
    metavar="NAME",
    callback=variable_names,
    help="A required variable (no default).",
)
@click.option(
    "-r", "--requires", multiple=True, metavar="MODULE", callback=module_names, help="A stored module it needs."
)
@click.option("--no-requires", is_flag=True, help="Clear the list of required modules.")
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def set_(obj, path, script, mode, info, values, evals, paths, required, requires, no_requires, output):
    """
    Store the procedure PATH (create or change it).

    The code is compiled first; code that does not compile is refused
    with its file's line number, and nothing is written.  Options not
    given keep their stored values (a new procedure is sync by default).
    '-v/-e/-p NAME VALUE' declare variable NAME with a default;
    '-e NAME -' removes its default (so it is required), '-e NAME /'
    removes the variable.  Prints 'created', 'updated' or 'unchanged'.
    With codes.signing_key set, the procedure is signed.
    """
    key = signing_key_of(obj)
    code = NotGiven
    if script is not None:
        code = read_source(script)
    variables = collect_variables(values, evals, paths, markers=True)
    fname = script if script not in (None, "-") else "<stdin>"

    def edit(old):
        if old is None:
            if code is NotGiven:
                raise click.UsageError(f"{path} is new: give its code with '-s FILE'")
            old = dict(code=None, is_async=None, process=False, variables=[], requires=[], info=None, default={})
        new = dict(old)
        if code is not NotGiven:
            new["code"] = code
        if mode is not None:
            new.update(mode_fields(mode))
        if info is not None:
            new["info"] = info or None
        vs, defaults = list(new["variables"]), dict(new["default"] or {})
        for name, val in [(n, NO_DEFAULT) for n in required] + list(variables):
            if val is DROP:
                if name in vs:
                    vs.remove(name)
                defaults.pop(name, None)
                continue
            if name not in vs:
                vs.append(name)
            if val is NO_DEFAULT:
                defaults.pop(name, None)
            else:
                defaults[name] = val
        new["variables"], new["default"] = vs, defaults
        if no_requires:
            new["requires"] = []
        if requires:
            new["requires"] = list(requires)
        return new

    try:
        action, _ = await store_procedure(get_client(obj), path, edit, prefix=_prefix(obj), signing_key=key)
    except CompileError as exc:
        if code is not NotGiven:
            exc.filename = fname
        raise
    show_action(obj, as_path(path), action, output)


def _summary(path, value):
    code = value.get("code") or ""
    return {
        "path": str(path),
        "mode": mode_of(value),
        "vars": list(value.get("vars", ())),
        "requires": list(value.get("requires", ()) or ()),
        "lines": len(code.splitlines()) if isinstance(code, str) else None,
        "info": value.get("info", None),
    }


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_procedures)
@script_for_get
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def get(obj, path, script, output):
    """
    Show the procedure PATH: its code and settings.

    On a terminal the code is shown highlighted after the settings; in a
    pipe (or with -o) the whole entry is printed as YAML or JSON.
    """
    value, _ = await get_procedure(get_client(obj), path, prefix=_prefix(obj))
    entry = dict(value)
    entry["mode"] = mode_of(value)
    show_entry(obj, entry, script, output)


@cli.command("list", epilog=EXIT_CODES)
@click.argument("path", required=False, default="", shell_complete=complete_procedures)
@depth_option
@output_option("table", "yaml", "json")
@click.pass_obj
@boundary
async def list_(obj, path, depth, output):
    """
    List the procedures at and below PATH (default: all).

    A table on a terminal; YAML in a pipe.  Exit status 3 if PATH is given
    and nothing is stored at or below it.
    """
    base = P(path) if path else ()
    rows = [
        _summary(p, v) async for p, v in list_procedures(get_client(obj), base, max_depth=depth, prefix=_prefix(obj))
    ]
    if path and not rows:
        raise NotFound("procedure", path)
    fmt = pick_format(output, stdout_of(obj), table_ok=True)
    if fmt == "table":
        table(
            obj,
            ["PATH", "MODE", "VARS", "REQUIRES", "LINES", "INFO"],
            [
                [r["path"], r["mode"], " ".join(r["vars"]), " ".join(r["requires"]), r["lines"], r["info"] or ""]
                for r in rows
            ],
        )
    else:
        emit(obj, rows, fmt)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_procedures)
@click.option("-f", "--force", is_flag=True, help="Delete even if runner entries run it.")
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def delete(obj, path, force, output):
    """
    Delete the procedure PATH.  Exit status 3 if there is none.

    Refused (exit status 4) while runner entries run it, naming them,
    unless --force (their jobs then fail until it is stored again).
    """
    # lazy: the runner engine costs ~30 ms at every start of `distkv client
    # code`; only delete and revert need it (to see the jobs)
    from distkv_ext.run import delete_procedure

    await delete_procedure(
        get_client(obj), path, force=force, prefix=_prefix(obj), job_prefix=obj.cfg["runner"]["prefix"]
    )
    show_action(obj, as_path(path), "deleted", output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_procedures)
@click.argument("file", shell_complete=complete_files)
@diff_options
@click.pass_obj
@boundary
async def diff(obj, path, file, context, quiet):
    """
    Compare the stored procedure PATH with FILE ('-': standard input).

    Prints a unified diff from the stored code to the file's.  Exit
    status 0: the same, 1: different.  Trailing newlines do not count.
    """
    local = read_source(file)  # a bad file is refused before asking the server
    value, _ = await get_procedure(get_client(obj), path, prefix=_prefix(obj))
    show_diff(obj, value.get("code"), local, file, as_path(path), context, quiet)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_procedures)
@click.argument("args", nargs=-1, metavar="[ARG]...")
@click.option(
    "-l", "--literal", is_flag=True, help="Read each ARG as a Python literal (42, [1, 2], 'text'), as -e does."
)
@variable_options
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def call(obj, path, args, literal, values, evals, paths, output):
    """
    Run the procedure PATH here, in this process, and print its result.

    \b
    Each ARG is a positional argument: they fill the procedure's
    variables in order ('code set --var'), and are text unless -l reads
    them as Python literals. Put '--' before an ARG that starts with '-'.
    More ARGs than variables is a usage error (exit status 2).

    Variables are passed with -v/-e/-p NAME VALUE; those the procedure
    does not declare become globals of its code, as does '_client' (the
    DistKV connection).  A procedure that raises exits with status 1.
    """
    pos = positional_values(args, literal)
    kw = dict(collect_variables(values, evals, paths))
    res = await call_procedure(get_client(obj), path, pos, kw, prefix=_prefix(obj))
    emit(obj, res, output)


@cli.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(dir_okay=False))
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def keygen(obj, file, output):
    """
    Make a code signing key: write it to the new FILE (mode 0600) and
    print its public key.

    Name FILE as codes.signing_key in the configuration of whoever stores
    code ('code set', 'module set', 'code deploy' then sign what they
    store), and list the public key in runner.trusted_keys of the runners
    that may run only signed code.  An existing FILE is not overwritten
    (exit status 4).  Needs no DistKV server.
    """
    key = new_signing_key(file)
    emit(obj, {"file": file, "public_key": key.public_text, "key_id": key_id(key.public)}, output)


add_history_commands(cli, "proc", "procedure", get_procedure, None, _prefix, complete_procedures)


@cli.command("revert", epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_procedures)
@to_option
@click.option("--repin", is_flag=True, help="Pin the jobs pinned to this procedure to the version brought back.")
@click.option("-f", "--force", is_flag=True, help="Revert even if that stops jobs pinned to another version.")
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def revert(obj, path, to, repin, force, output):
    """
    Store a saved version of the procedure PATH again.

    The version it replaces is saved in turn, so a revert can be reverted.
    The old version is checked like any change (it must compile).  Jobs
    pinned to another version would stop running it: that is refused
    (exit status 4, naming each job and its version) unless --repin (pin
    them to the version brought back) or --force (leave them as they are).
    """
    # lazy: the runner engine costs ~30 ms at every start of `distkv client
    # code`; only delete and revert need it (to see the jobs)
    from distkv_ext.run import revert_pinned_procedure

    action, _, repinned = await revert_pinned_procedure(
        get_client(obj),
        path,
        to,
        repin=repin,
        force=force,
        prefix=_prefix(obj),
        job_prefix=obj.cfg["runner"]["prefix"],
    )
    action = "reverted" if action != "unchanged" else action
    if output:
        emit(obj, {"path": str(as_path(path)), "action": action, "repinned": repinned}, output)
        return
    show_action(obj, as_path(path), action, None)
    for label in repinned:
        print(f"repinned: {label}", file=stdout_of(obj))


cli.add_command(deploy)
