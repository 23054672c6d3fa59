"""Man pages for ``distkv client code|module|run``, generated from the click tree.

``python -m distkv_ext.devtools.mangen [DIR]`` (or ``./dev.sh docs``)
writes ``DIR/distkv-client-{code,module,run}.1`` and the file formats'
page ``distkv-code-deploy.5`` (`manformats`) (default: ``man/``); a test
fails when the files in the repository differ from what this makes.

Why not click-man (0.6.0, checked 2026-12-02): it imports plain ``click``
and keeps only ``click.Option`` parameters, so it drops every option of
an asyncclick command; it writes one page per subcommand with no room
for the sections these pages carry (exit status, configuration,
examples, files); and it would add ``click`` as a second click.
"""

import importlib.metadata
import inspect
import os
import sys

import asyncclick as click

from distkv_ext.code.client import cli as code
from distkv_ext.codekit.core.status import ExitStatus
from distkv_ext.module.client import cli as module
from distkv_ext.run.client import cli as run

from .manformats import PAGES

__all__ = ["pages", "all_pages", "render", "main"]

#: The installed release (the version lives in setup.cfg only).
VERSION = importlib.metadata.version("distkv-code")

EXAMPLES = {
    "code": [
        ("Store a procedure from a file; async code:", "distkv client code set heating.pump -s pump.py --async"),
        (
            "Declare a required variable and one with a default:",
            "distkv client code set calc.add -s add.py --var a -e b 2",
        ),
        ("Call it here, print the result as JSON:", "distkv client code call calc.add -e a 40 -o json"),
        ("Is the stored code what is in git? (exit 1 if not)", "distkv client code diff heating.pump pump.py"),
    ],
    "module": [
        ("Store a module that needs another one:", "distkv client module set util.pid -s pid.py -r util.math"),
        ("What needs what:", "distkv client module graph"),
        ("Check everything before a deploy (exit 4 on problems):", "distkv client module check"),
    ],
    "run": [
        (
            "Run heating.pump on any node of group boiler, now:",
            "distkv client run set pump -c heating.pump -g boiler -t now",
        ),
        (
            "Every 60 s on every node of group sensors:",
            "distkv client run set poll -c sensors.poll -g sensors --all-nodes -t now -r 60",
        ),
        ("The runner daemon of group boiler (one per machine):", "distkv client run all -g boiler"),
        ("Why is it not running?", "distkv client run why pump -g boiler"),
        ("Follow what it prints, wherever it runs:", "distkv client run logs pump -g boiler -f"),
        ("The live status page of group boiler, on loopback:", "distkv client run web -g boiler"),
    ],
}

FILES = {
    "code": [
        ("codes.prefix", "where procedures are stored (default :.distkv.code.proc)"),
        ("codes.signing_key", "a key file (code keygen): set, deploy and revert sign what they store"),
    ],
    "module": [
        ("modules.prefix", "where modules are stored (default :.distkv.code.module)"),
        ("codes.signing_key", "a key file (code keygen): set and revert sign what they store"),
    ],
    "run": [
        ("runner.prefix", "runner entries (default :.distkv.run)"),
        ("runner.state", "their state entries (default :.distkv.state)"),
        ("runner.heartbeat", "seconds between heartbeats of a runner group (0.5)"),
        ("runner.timeout", "seconds of silence after which a runner is gone (2)"),
        (
            "runner.settle",
            "seconds a claim waits for a competing one at least (0.25; longer while the group channel is slow)",
        ),
        ("runner.rebalance, runner.rebalance_delay", "move running jobs to a node that joins (true, 2 s)"),
        ("runner.weight", "this node's share of any-node jobs (1)"),
        ("runner.stop_timeout", "seconds to wait for jobs on stop (10)"),
        ("runner.output", "where the jobs' output goes (default :.distkv.output)"),
        ("runner.output_lines, runner.output_runs", "lines kept per run (200), runs kept per job (5)"),
        ("runner.web_token_file", "the token of 'run web --allow-actions' (a file only its owner may read)"),
        ("runner.group_key", "a key file (run keygen): the group's messages are authenticated (none: they are not)"),
        ("runner.group_key_next", "a second key file, also accepted (key rotation)"),
        ("runner.trusted_keys", "public keys (code keygen): run and import only code signed by one of them"),
    ],
}

EXIT_TEXT = {
    ExitStatus.OK: "success; diff: no differences",
    ExitStatus.DIFFERENT: "diff: differences found; or another failure (e.g. a called procedure raised)",
    ExitStatus.USAGE: "usage error (also an option value out of range, a -c file that cannot be used)",
    ExitStatus.NOT_FOUND: "not found: nothing is stored at that path (or no job output matches)",
    ExitStatus.REFUSED: "input refused (does not compile, cycle, bad file or value, in use); nothing was written",
    ExitStatus.SERVER: "cannot reach or talk to the DistKV server",
    ExitStatus.INTERRUPTED: "interrupted",
    ExitStatus.PIPE_CLOSED: "standard output was closed by its reader (| head): the command stopped quietly",
}


def _esc(text):
    out = []
    for line in text.replace("\\", "\\e").splitlines():
        if line.strip() == "\b":
            continue
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def _para(text):
    """click help text -> roff paragraphs (blank lines separate them)."""

    text = inspect.cleandoc(text or "")
    res, block, literal = [], [], False
    for line in text.splitlines() + [""]:
        if line.strip() == "\b":
            literal = True
            continue
        if not line.strip():
            if block:
                res.append(
                    (".nf\n" + _esc("\n".join(block)) + "\n.fi")
                    if literal
                    else _esc(" ".join(b.strip() for b in block))
                )
            block, literal = [], False
            continue
        block.append(line)
    return "\n.PP\n".join(res)


def _opt(p):
    names = ", ".join(f"\\fB{o.replace('-', chr(92) + '-')}\\fR" for o in p.opts + p.secondary_opts)
    meta = ""
    if not p.is_flag and not p.count:
        mv = p.metavar or (p.type.name.upper() if p.nargs == 1 else " ".join(["VALUE"] * p.nargs))
        if isinstance(p.type, click.Choice):
            mv = "|".join(p.type.choices)
        meta = f" \\fI{_esc(mv)}\\fR"
    return f".TP\n{names}{meta}\n{_esc(p.help or '')}"


def _usage(name, cmd):
    args = " ".join(
        f"\\fI{a.name.upper()}\\fR" + ("" if a.required else "?") for a in cmd.params if isinstance(a, click.Argument)
    )
    return f"\\fBdistkv client {name} {cmd.name}\\fR {args} [\\fIOPTIONS\\fR]".replace("  ", " ")


def render(name, group):
    """The man page (roff text) of ``distkv client NAME``."""
    title = f"DISTKV-CLIENT-{name.upper()}"
    lines = [
        f'.TH {title} 1 "" "distkv-code {VERSION}" "distkv-code manual"',
        ".SH NAME",
        f"distkv\\-client\\-{name} \\- {_esc(group.short_help or '').rstrip('.').lower()}",
        ".SH SYNOPSIS",
        f"\\fBdistkv\\fR [\\fB\\-c\\fR \\fICONFIG\\fR] [\\fB\\-v\\fR] \\fBclient {name}\\fR \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        _para(group.help),
        ".SH COMMANDS",
    ]
    for cname in sorted(group.commands):
        cmd = group.commands[cname]
        lines += [f".SS {cname}", _usage(name, cmd), ".PP", _para(cmd.help)]
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                lines.append(_opt(p))
    lines += [".SH EXIT STATUS", "The same for every command of distkv\\-code:"]
    for st, text in EXIT_TEXT.items():
        lines += [".TP", f"\\fB{int(st)}\\fR", _esc(text)]
    lines += [
        ".PP",
        "Errors are one line on standard error, \\fIError: ...\\fR; \\fBdistkv \\-v\\fR adds the traceback.",
    ]
    lines += [".SH EXAMPLES"]
    for text, cmd in EXAMPLES.get(name, ()):
        lines += [".PP", _esc(text), ".PP", ".RS", f"\\fB{_esc(cmd).replace('-', chr(92) + '-')}\\fR", ".RE"]
    lines += [
        ".SH FILES",
        "The DistKV configuration (\\fB\\-c\\fR \\fIFILE\\fR, else /etc/distkv.cfg and the other places DistKV reads); keys used:",
    ]
    for key, text in FILES.get(name, ()):
        lines += [".TP", f"\\fB{_esc(key)}\\fR", _esc(text)]
    others = [f"\\fBdistkv\\-client\\-{o}\\fR(1)" for o in ("code", "module", "run") if o != name]
    if name == "code":
        others.append("\\fBdistkv\\-code\\-deploy\\fR(5)")
    lines += [".SH SEE ALSO", ", ".join(others + ["\\fBdistkv\\fR(1)"]) + "; README.md of distkv\\-code."]
    return "\n".join(lines) + "\n"


def pages():
    """{file name: roff text} of the commands' man pages (section 1)."""

    return {f"distkv-client-{n}.1": render(n, g) for n, g in (("code", code), ("module", module), ("run", run))}


def all_pages():
    """{file name: roff text} of every man page: the commands' and the
    file formats' (`manformats`)."""
    return {**pages(), **{fn: make() for fn, make in PAGES.items()}}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else "man"
    os.makedirs(out, exist_ok=True)
    for fn, text in all_pages().items():
        with open(os.path.join(out, fn), "w", encoding="utf-8") as f:
            f.write(text)
        print(os.path.join(out, fn))


if __name__ == "__main__":
    main()
