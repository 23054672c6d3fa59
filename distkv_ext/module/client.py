"""``distkv client module``: manage Python modules stored in DistKV.

Thin by design: parse options, call `distkv_ext.module`, format output.
"""

import asyncclick as click
from moat.util import P

from distkv_ext.codekit.cli.boundary import CliError, boundary, get_client
from distkv_ext.codekit.cli.common import (
    EXIT_CODES,
    add_history_commands,
    depth_option,
    diff_options,
    script_for_get,
    show_action,
    show_diff,
    show_entry,
)
from distkv_ext.codekit.cli.complete import complete_files, complete_modules
from distkv_ext.codekit.cli.output import emit, output_option, pick_format, stdout_of, table
from distkv_ext.codekit.cli.params import module_names, one_line_option
from distkv_ext.codekit.cli.signing import signing_key_of
from distkv_ext.codekit.core.depgraph import closure, render_tree
from distkv_ext.codekit.core.errors import CompileError, NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.source import read_source
from distkv_ext.codekit.core.status import ExitStatus
from distkv_ext.codekit.upstream import apply_client

from . import (
    check_modules,
    get_module,
    list_modules,
    module_graph,
    remove_module,
    revert_module,
    store_module,
)

# repair DistKV's `distkv client` before its group callback connects
apply_client()


def _prefixes(obj):
    return {"prefix": obj.cfg["modules"]["prefix"], "proc_prefix": obj.cfg["codes"]["prefix"]}


@click.group(short_help="Manage Python modules stored in DistKV.", epilog=EXIT_CODES)
async def cli():
    """
    Store Python modules in DistKV; stored code imports them by name.

    A module stored at util.pid (below .distkv.code.module) is what
    'import util.pid' finds in stored procedures and in any program that
    runs a module handler. Modules load when first imported, the modules
    they require first; a changed module is reloaded.
    """


@cli.command("set", epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_modules)
@click.option(
    "-s", "--script", metavar="FILE", shell_complete=complete_files, help="File with the code; '-': standard input."
)
@click.option(
    "-r",
    "--requires",
    multiple=True,
    metavar="MODULE",
    callback=module_names,
    help="A stored module it needs (loaded first).",
)
@click.option("--no-requires", is_flag=True, help="Clear the list of required modules.")
@click.option("-i", "--info", callback=one_line_option, help="One line describing the module.")
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def set_(obj, path, script, requires, no_requires, info, output):
    """
    Store the module PATH (create or change it).

    Refused, with nothing written: code that does not compile (with its
    file's line number), requires that would close a cycle (the message
    names it).  Options not given keep their stored values.  With
    codes.signing_key set, the module is signed.
    """
    key = signing_key_of(obj)
    code = read_source(script) if script is not None else None

    def edit(old):
        if old is None:
            if code is None:
                raise click.UsageError(f"{path} is new: give its code with '-s FILE'")
            old = {"code": None, "requires": [], "info": None}
        new = dict(old)
        if code is not None:
            new["code"] = code
        if no_requires:
            new["requires"] = []
        if requires:
            new["requires"] = list(requires)
        if info is not None:
            new["info"] = info or None
        return new

    try:
        action, _ = await store_module(get_client(obj), path, edit, prefix=_prefixes(obj)["prefix"], signing_key=key)
    except CompileError as exc:
        if code is not None:
            exc.filename = script if script != "-" else "<stdin>"
        raise
    show_action(obj, as_path(path), action, output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_modules)
@script_for_get
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def get(obj, path, script, output):
    """Show the module PATH: its code and requires."""
    value, _ = await get_module(get_client(obj), path, prefix=_prefixes(obj)["prefix"])
    show_entry(obj, dict(value), script, output)


@cli.command("list", epilog=EXIT_CODES)
@click.argument("path", required=False, default="", shell_complete=complete_modules)
@depth_option
@output_option("table", "yaml", "json")
@click.pass_obj
@boundary
async def list_(obj, path, depth, output):
    """
    List the modules at and below PATH (default: all).

    A table on a terminal (path, requires, lines, info); YAML in a pipe.
    """
    base = P(path) if path else ()
    rows = []
    async for p, v in list_modules(get_client(obj), base, max_depth=depth, prefix=_prefixes(obj)["prefix"]):
        code = v.get("code") if isinstance(v, dict) else None
        rows.append(
            {
                "path": str(p),
                "requires": list(v.get("requires", ()) or ()) if isinstance(v, dict) else [],
                "lines": len(code.splitlines()) if isinstance(code, str) else None,
                "info": v.get("info") if isinstance(v, dict) else None,
            }
        )
    if path and not rows:
        raise NotFound("module", path)
    fmt = pick_format(output, stdout_of(obj), table_ok=True)
    if fmt == "table":
        table(
            obj,
            ["PATH", "REQUIRES", "LINES", "INFO"],
            [[r["path"], " ".join(r["requires"]), r["lines"], r["info"] or ""] for r in rows],
        )
    else:
        emit(obj, rows, fmt)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_modules)
@click.option("-f", "--force", is_flag=True, help="Delete even if other code needs it.")
@output_option("yaml", "json")
@click.pass_obj
@boundary
async def delete(obj, path, force, output):
    """
    Delete the module PATH.

    Refused (exit status 4) when other modules or procedures require or
    import it, naming them, unless --force.
    """
    await remove_module(get_client(obj), path, force=force, **_prefixes(obj))
    show_action(obj, as_path(path), "deleted", output)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", shell_complete=complete_modules)
@click.argument("file", shell_complete=complete_files)
@diff_options
@click.pass_obj
@boundary
async def diff(obj, path, file, context, quiet):
    """
    Compare the stored module PATH with FILE ('-': standard input).

    Exit status 0: the same, 1: different.
    """
    local = read_source(file)
    value, _ = await get_module(get_client(obj), path, prefix=_prefixes(obj)["prefix"])
    show_diff(obj, value.get("code"), local, file, as_path(path), context, quiet)


@cli.command(epilog=EXIT_CODES)
@click.argument("path", required=False, shell_complete=complete_modules)
@output_option("text", "yaml", "json", default="text")
@click.pass_obj
@boundary
async def graph(obj, path, output):
    """
    Show what needs what: modules and procedures and the modules they
    require or import.

    Without PATH: every tree, starting at what nothing else needs.  With
    PATH (a module, or proc:NAME for a procedure): what it needs, and what
    needs it.
    """
    nodes = await module_graph(get_client(obj), **_prefixes(obj))
    if path is not None and path not in nodes:
        raise NotFound("module", path)
    if output != "text":
        emit(obj, nodes if path is None else {path: nodes[path]}, output)
        return
    edges = {k: n["needs"] for k, n in nodes.items()}

    def label(n):
        if n not in nodes:
            return f"{n} (not stored)"
        return n

    if path is None:
        roots = sorted(k for k, n in nodes.items() if not n["needed_by"])
        # members of a cycle that nothing outside needs have no root
        reached = set()
        for r in roots:
            reached |= closure(edges, [r])
        roots += sorted(set(nodes) - reached)
        text = render_tree(edges, roots, label)
    else:
        text = render_tree(edges, [path], label)
        users = nodes[path]["needed_by"]
        text += f"needed by: {', '.join(users) if users else 'nothing'}\n"
    print(text, end="", file=stdout_of(obj))


@cli.command(epilog=EXIT_CODES)
@output_option("text", "yaml", "json", default="text")
@click.pass_obj
@boundary
async def check(obj, output):
    """
    Check all stored modules: they compile, every requires is stored (for
    procedures too), no requires cycles.  Exit status 0: all well; 4: the
    problems are listed.
    """
    problems = await check_modules(get_client(obj), **_prefixes(obj))
    if output != "text":
        emit(obj, [{"name": n, "problem": p} for n, p in problems], output)
    else:
        for n, p in problems:
            print(f"{n}: {p}", file=stdout_of(obj))
    if problems:
        raise CliError(f"{len(problems)} problem(s) found", ExitStatus.REFUSED)


add_history_commands(
    cli, "module", "module", get_module, revert_module, lambda obj: _prefixes(obj)["prefix"], complete_modules
)
