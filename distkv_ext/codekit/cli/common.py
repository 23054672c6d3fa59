"""Output steps shared by ``distkv client code`` and ``module``."""

import datetime

import asyncclick as click

from distkv_ext.codekit.core.digest import content_hash
from distkv_ext.codekit.core.errors import NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.signing import SIG_FIELD, verify
from distkv_ext.codekit.core.textdiff import unified_diff
from distkv_ext.codekit.store.history import versions

from .boundary import Finished, boundary, get_client
from .complete import complete_files
from .output import emit, highlight, output_option, pick_format, stdout_of, table
from .signing import signing_key_of

__all__ = [
    "EXIT_CODES",
    "add_history_commands",
    "show_history",
    "show_action",
    "show_entry",
    "show_diff",
    "diff_options",
    "script_for_get",
    "to_option",
    "depth_option",
]

EXIT_CODES = """\b
Exit status: 0 success (diff: no differences), 1 differences found
(diff) or another failure, 2 usage error (also an option value out of
range), 3 not found, 4 input refused (does not compile, bad file or
value, cycle, in use; nothing written), 5 cannot reach the DistKV server,
130 interrupted, 141 standard output closed by its reader (| head)."""


def show_action(obj, path, action, output):
    """``created: PATH`` (or the same as YAML/JSON with ``-o``)."""
    if output:
        emit(obj, {"path": str(path), "action": action}, output)
    else:
        print(f"{action}: {path}", file=stdout_of(obj))


def show_entry(obj, entry, script, output):
    """Print a stored entry (a dict with ``code``).

    ``script``: write just the code to that file (``-``: stdout).  On a
    terminal without ``-o``: the settings as YAML, then the code
    highlighted; else the whole entry as YAML or JSON.
    """
    code = entry.get("code") or ""
    out = stdout_of(obj)
    if script is not None:
        text = code if code.endswith("\n") or not code else code + "\n"
        if script == "-":
            out.write(text)
        else:
            with open(script, "w", encoding="utf-8") as f:
                f.write(text)
        return
    if output is None and pick_format(None, out, table_ok=True) == "table":
        emit(obj, {k: v for k, v in entry.items() if k != "code"})
        print("---", file=out)
        print(highlight(code.rstrip("\n") + "\n", "python", out), end="", file=out)
        return
    emit(obj, entry, output)


def diff_options(fn):
    fn = click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit status.")(fn)
    fn = click.option(
        "-U", "--unified", "context", type=click.IntRange(0, 1000), default=3, help="Lines of context (0 to 1000)."
    )(fn)
    return fn


def show_diff(obj, stored, local, file, name, context, quiet):
    """Diff stored text against ``local`` (read from ``file``); exit
    status 1 if they differ."""
    text = unified_diff(stored or "", local, f"distkv:{name}", file, context)
    if not text:
        return
    if not quiet:
        out = stdout_of(obj)
        print(highlight(text, "diff", out), end="", file=out)
    raise Finished(1)


def depth_option(fn):
    """``-d/--depth N``: levels below PATH (0 or more)."""
    return click.option("-d", "--depth", type=click.IntRange(min=0), default=None, help="Levels below PATH to show.")(
        fn
    )


def script_for_get(fn):
    return click.option(
        "-s",
        "--script",
        metavar="FILE",
        shell_complete=complete_files,
        help="Write the code to FILE ('-': stdout), nothing else.",
    )(fn)


def _signed(kind, path, value):
    """Who signed a stored version: a key id, "invalid" (a signature that
    does not fit), or "" (none)."""
    if not isinstance(value, dict) or value.get(SIG_FIELD) is None:
        return ""
    v = verify(kind, path, value, ())
    return v.key if v.key else "invalid"


def show_history(obj, records, current, output, kind=None, path=()):
    """The saved versions (oldest first) and the current one (``kind``:
    "proc" or "module", ``path``: the entry's, to check signatures)."""

    def when(t):
        return datetime.datetime.fromtimestamp(t).isoformat(timespec="seconds") if t else ""

    def lines(v):
        code = v.get("code") if isinstance(v, dict) else None
        return len(code.splitlines()) if isinstance(code, str) else None

    rows = [
        {
            "n": r["n"],
            "replaced": when(r.get("replaced")),
            "by": r.get("by"),
            "hash": r.get("hash"),
            "lines": lines(r["value"]),
            "signed": _signed(kind, path, r["value"]),
        }
        for r in records
    ]
    if current is not None:
        rows.append(
            {
                "n": "current",
                "replaced": "",
                "by": "",
                "hash": content_hash(current, kind),
                "lines": lines(current),
                "signed": _signed(kind, path, current),
            }
        )
    fmt = pick_format(output, stdout_of(obj), table_ok=True)
    if fmt == "table":
        table(
            obj,
            ["VERSION", "REPLACED", "BY", "HASH", "LINES", "SIGNED"],
            [[r["n"], r["replaced"], r["by"], (r["hash"] or "")[:16], r["lines"], r["signed"]] for r in rows],
        )
    else:
        emit(obj, rows, fmt)


def to_option(fn):
    """``--to N``: a version number (1 or more)."""
    return click.option(
        "--to", "to", type=click.IntRange(min=1), help="Version to bring back (default: the latest saved)."
    )(fn)


def add_history_commands(cli, kind, what, get_current, revert, prefix_of, complete):
    """Add ``history PATH`` and ``revert PATH [--to N]`` to ``cli``.

    ``kind``: "proc" or "module" (see `distkv_ext.codekit.history`);
    ``get_current(client, path, prefix=)`` and ``revert(client, path, to,
    prefix=)`` are the library's; ``prefix_of(obj)`` the stored prefix.
    ``revert=None``: no ``revert`` command (the caller adds its own).
    """

    @cli.command(
        epilog=EXIT_CODES,
        help=f"""
    List the saved versions of the {what} PATH, oldest first.

    Every change made with distkv-code (set, delete, revert) saves the
    version it replaces; the last 10 are kept.  'revert' brings one back.
    """,
    )
    @click.argument("path", shell_complete=complete)
    @output_option("table", "yaml", "json")
    @click.pass_obj
    @boundary
    async def history(obj, path, output):
        client = get_client(obj)
        records = await versions(client, kind, as_path(path))
        try:
            current, _ = await get_current(client, path, prefix=prefix_of(obj))
        except NotFound:
            current = None
        if not records and current is None:
            raise NotFound(what, as_path(path))
        show_history(obj, records, current, output, kind, as_path(path))

    if revert is None:
        return history, None

    @cli.command(
        "revert",
        epilog=EXIT_CODES,
        help=f"""
    Store a saved version of the {what} PATH again.

    The version it replaces is saved in turn, so a revert can be reverted.
    The old version is checked like any change (it must compile), and
    comes back with its signature (or is signed with codes.signing_key).
    """,
    )
    @click.argument("path", shell_complete=complete)
    @to_option
    @output_option("yaml", "json")
    @click.pass_obj
    @boundary
    async def revert_(obj, path, to, output):
        action, _ = await revert(get_client(obj), path, to, prefix=prefix_of(obj), signing_key=signing_key_of(obj))
        show_action(obj, as_path(path), "reverted" if action != "unchanged" else action, output)

    return history, revert_
