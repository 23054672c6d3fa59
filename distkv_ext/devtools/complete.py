"""Shell completion for ``distkv client code|module|run``.

DistKV's own completion crashes (its loader reads settings that are not
there during completion), so the scripts in ``completions/`` ask
``distkv-code-complete`` instead.  It builds the same commands under a
plain ``distkv client`` group (the global options included), and before
completing fetches the stored procedure, module and job paths and the
runner groups from the DistKV server of ``-c FILE`` (or DistKV's default
configuration), giving up after a second when there is none.

``python -m distkv_ext.devtools.complete --scripts DIR`` writes the
bash, zsh and fish scripts (``./dev.sh docs`` does it).
"""

import os
import sys

import anyio
import asyncclick as click
from asyncclick.shell_completion import BashComplete, FishComplete, ZshComplete, shell_complete
from distkv.client import open_client
from distkv.default import CFG
from moat.util import attrdict, combine_dict, read_cfg, to_attrdict

from distkv_ext.code.client import cli as code
from distkv_ext.codekit.cli import complete as callbacks
from distkv_ext.codekit.store.entries import list_entries
from distkv_ext.codekit.upstream.asyncscope import quiet_connect_errors
from distkv_ext.module.client import cli as module
from distkv_ext.run import split_job_path
from distkv_ext.run.client import cli as run

__all__ = ["main", "scripts", "prefetch", "root_command", "ours"]

PROG = "distkv"
COMPLETE_VAR = "_DISTKV_CODE_COMPLETE"
HELPER = "distkv-code-complete"


def _config_file(words):
    for i, w in enumerate(words):
        if w in ("-c", "--cfg") and i + 1 < len(words):
            return words[i + 1]
        if w.startswith("--cfg="):
            return w.split("=", 1)[1]
    return None


async def prefetch(words, timeout=1.0):
    """Fill the callbacks' `CACHE` from the server named by ``words`` (best effort)."""

    quiet_connect_errors()
    cfg = read_cfg("distkv", _config_file(words)) or {}
    cfg = combine_dict(to_attrdict(cfg), CFG, cls=attrdict)

    async def names(c, prefix):
        return [p async for p, _ in list_entries(c, prefix)]

    try:
        with anyio.fail_after(timeout):
            async with open_client(**cfg) as c:
                callbacks.CACHE["code"] = [str(p) for p in await names(c, cfg.codes.prefix)]
                callbacks.CACHE["module"] = [str(p) for p in await names(c, cfg.modules.prefix)]
                jobs = [split_job_path(p) for p in await names(c, cfg.runner.prefix)]
                callbacks.CACHE["job"] = sorted({str(j[3]) for j in jobs if j})
                callbacks.CACHE["group"] = sorted({str(j[1]) for j in jobs if j})
                jobs_of = {}
                for j in jobs:
                    if j:
                        key = f"{j[0]} {j[1]}" if j[0] != "single" else f"single {j[1]} {j[2]}"
                        jobs_of.setdefault(key, set()).add(str(j[3]))
                callbacks.CACHE["jobs_of"] = {k: sorted(v) for k, v in jobs_of.items()}
    except Exception:  # no server: no paths
        pass


def root_command():
    """``distkv`` with DistKV's global options and ``client code|module|run``."""

    @click.group(name=PROG)
    @click.option("-c", "--cfg", type=click.Path(), help="Configuration file (YAML).")
    @click.option("-v", "--verbose", count=True, help="Be more verbose.")
    @click.option("-q", "--quiet", count=True, help="Be less verbose.")
    @click.option("-D", "--debug", count=True, help="Enable debug speed-ups.")
    @click.option("-C", "--conf", multiple=True, help="Override a config entry.")
    @click.option("-l", "--log", multiple=True, help="Adjust log level.")
    async def root(**_):
        """DistKV."""

    @root.group()
    @click.option("-h", "--host", help="Host to use.")
    @click.option("-p", "--port", type=int, help="Port to use.")
    @click.option("-a", "--auth", help="Auth params.")
    @click.option("-m", "--metadata", is_flag=True, help="Include/print metadata.")
    async def client(**_):
        """Talk to a DistKV server."""

    client.add_command(code, "code")
    client.add_command(module, "module")
    client.add_command(run, "run")
    return root


def scripts():
    """{file name: script} for bash, zsh and fish."""

    root = root_command()
    res = {}
    for fn, cls, old, new in (
        ("distkv.bash", BashComplete, "=bash_complete $1)", f"=bash_complete {HELPER})"),
        ("_distkv", ZshComplete, f"=zsh_complete {PROG})", f"=zsh_complete {HELPER})"),
        (
            "distkv.fish",
            FishComplete,
            f"COMP_CWORD=(commandline -t) {PROG});",
            f"COMP_CWORD=(commandline -t) {HELPER});",
        ),
    ):
        text = cls(root, {}, PROG, COMPLETE_VAR).source()
        assert old in text, (fn, old)
        head = "# Completion of 'distkv client code|module|run' (distkv-code); generated.\n"
        res[fn] = head + text.replace(old, new) + "\n"
    return res


#: Options of ``distkv`` and of ``distkv client`` that take a value.
_ROOT_VALUE = {"-c", "--cfg", "-C", "--conf", "-l", "--log"}
_CLIENT_VALUE = {"-h", "--host", "-p", "--port", "-a", "--auth"}


def ours(words, cword):
    """Is the command line ``words`` (the word at index ``cword`` being
    completed) one of our commands (or on its way to one)?  ``distkv
    client data <TAB>`` is not: DistKV's own commands get nothing from us."""
    done = words[1:cword]

    def skip(i, takes_value):
        while i < len(done) and done[i].startswith("-"):
            i += 2 if done[i] in takes_value else 1
        return i

    i = skip(0, _ROOT_VALUE)
    if i >= len(done):
        return True
    if done[i] != "client":
        return False
    i = skip(i + 1, _CLIENT_VALUE)
    return i >= len(done) or done[i] in ("code", "module", "run")


def _cword(words):
    cword = os.environ.get("COMP_CWORD", "")
    if cword.isdigit():  # bash, zsh: the index of the word being completed
        return int(cword)
    # fish: the word itself, last on the line unless the line ends in a space
    return len(words) - 1 if cword and words and words[-1] == cword else len(words)


async def _complete(instruction):

    words = os.environ.get("COMP_WORDS", "").split()
    if not ours(words, _cword(words)):
        return 0
    if "client" in words and {"code", "module", "run"} & set(words):
        await prefetch(words)
    return await shell_complete(root_command(), {}, PROG, COMPLETE_VAR, instruction)


def main(argv=None):
    """``distkv-code-complete``: answer the shell scripts; or, with
    ``--scripts DIR``, write them."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--scripts"]:
        out = argv[1] if len(argv) > 1 else "completions"
        os.makedirs(out, exist_ok=True)
        for fn, text in scripts().items():
            with open(os.path.join(out, fn), "w", encoding="utf-8") as f:
                f.write(text)
            print(os.path.join(out, fn))
        return
    instruction = os.environ.get(COMPLETE_VAR)
    if not instruction:
        print(f"Error: run by the shell completion scripts (set {COMPLETE_VAR})", file=sys.stderr)
        sys.exit(2)
    rc = anyio.run(_complete, instruction, backend="trio")
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
