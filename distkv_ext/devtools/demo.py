"""``distkv-code-demo``: the README's main command.

Starts a local DistKV node (broker + server, see `node`), then drives the
real ``distkv`` command as a user would: store a procedure, call it, list
it, show a diff against an edited file, store the edit, and stop the
node.  Every command is printed before it runs, with its output and exit
status.  Exits non-zero if any step does not do what it should.
"""

import os
import shlex
import sys
import tempfile

import anyio

from .node import local_cluster

__all__ = ["main"]

HELLO = '''\
"""Greet someone."""
greeting = f"Hello, {name}!"
return greeting
'''

HELLO2 = '''\
"""Greet someone, loudly."""
greeting = f"Hello, {name}!"
return greeting.upper()
'''


class StepFailed(Exception):
    pass


async def _step(cfg, args, expect=0, note=None, stdin=None):
    distkv = os.path.join(os.path.dirname(sys.executable), "distkv")
    shown = "distkv -c $CFG client " + " ".join(shlex.quote(a) for a in args)
    print()
    if note:
        print(f"# {note}")
    print(f"$ {shown}", flush=True)
    res = await anyio.run_process([distkv, "-c", cfg, "client", *args], input=stdin, check=False)
    sys.stdout.write(res.stdout.decode())
    sys.stdout.write(res.stderr.decode())
    print(f"(exit status {res.returncode})", flush=True)
    if res.returncode != expect:
        raise StepFailed(f"{shown}: exit status {res.returncode}, expected {expect}")
    return res


async def _demo(workdir):
    print("Starting a local DistKV node (MQTT broker + one server, loopback only) ...")
    async with local_cluster(1, workdir=os.path.join(workdir, "node")) as cl:
        cfg = cl.client_config
        print(f"Node s1 serves on 127.0.0.1:{cl.servers[0].port}.")
        print(f"CFG={cfg}")
        src = os.path.join(workdir, "hello.py")
        with open(src, "w", encoding="utf-8") as f:
            f.write(HELLO)
        print(f"\n--- {src} ---\n{HELLO}---")
        await _step(
            cfg,
            ["code", "set", "demo.hello", "-s", src, "--var", "name", "-i", "Greets NAME"],
            note="store the procedure (compiled first; refused if it does not compile)",
        )
        await _step(cfg, ["code", "call", "demo.hello", "-v", "name", "World"], note="call it")
        await _step(cfg, ["code", "list", "-o", "table"], note="list what is stored")
        await _step(
            cfg,
            ["code", "set", "demo.broken", "-s", "-"],
            expect=4,
            note="code that does not compile is refused (exit 4), nothing is written",
            stdin=b"return (1 +\n",
        )
        with open(src, "w", encoding="utf-8") as f:
            f.write(HELLO2)
        await _step(
            cfg,
            ["code", "diff", "demo.hello", src],
            expect=1,
            note="edit the file; diff shows what would change (exit 1: different)",
        )
        await _step(cfg, ["code", "set", "demo.hello", "-s", src], note="store the edit")
        await _step(cfg, ["code", "diff", "demo.hello", src], note="now the same (exit 0)")
        await _step(cfg, ["code", "call", "demo.hello", "-v", "name", "World"])
        print("\nStopping the node ...")
    print("Done.")


def main(argv=None):
    """Run the demo; exit status 0 when every step did what it should."""
    del argv
    with tempfile.TemporaryDirectory(prefix="distkv-code-demo-") as d:
        try:
            anyio.run(_demo, d, backend="trio")
        except StepFailed as exc:
            print(f"Error: demo step failed: {exc}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)


if __name__ == "__main__":
    main()
