"""``distkv-code-demo`` (``./dev.sh demo``): the README's main command.

Starts a local DistKV node (broker + server, see `node`), the status page
and three runner daemons of one group, then drives the real ``distkv``
command as a user would: store a procedure and an any-node job, show
which runner runs it, kill that runner with ``kill -9`` and show the job
running elsewhere with the seconds it took; then a procedure's life (call,
list, bad code refused, diff, update).  Every command is printed before
it runs, with its output and exit status.  At the end everything is
stopped; ``--keep`` leaves it all running (node, runners, status page)
until Ctrl-C.  Exits non-zero if a step does not do what it should.
"""

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import anyio
from distkv.client import open_client
from moat.util import P, yload

from .node import local_cluster

__all__ = ["main"]

GROUP = "demo"
RUNNERS = ("r1", "r2", "r3")

TICK = '''\
"""Count, once a second, on whichever runner holds the job."""
import anyio
n = 0
while True:
    print(f"tick {n} on {_entry.root.node}")
    n += 1
    await anyio.sleep(1)
'''

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


def _distkv():
    return os.path.join(os.path.dirname(sys.executable), "distkv")


def _shown(args):
    return "distkv -c $CFG client " + " ".join(shlex.quote(a) for a in args)


async def _step(cfg, args, expect=0, note=None, stdin=None):
    print()
    if note:
        print(f"# {note}")
    print(f"$ {_shown(args)}", flush=True)
    res = await anyio.run_process([_distkv(), "-c", cfg, "client", *args], input=stdin, check=False)
    sys.stdout.write(res.stdout.decode())
    sys.stdout.write(res.stderr.decode())
    print(f"(exit status {res.returncode})", flush=True)
    if res.returncode != expect:
        raise StepFailed(f"{_shown(args)}: exit status {res.returncode}, expected {expect}")
    return res


class _Background:
    """A ``distkv client ...`` process in the background, its output in a log."""

    def __init__(self, name, log):
        self.name = name
        self.log = log
        self.proc = None

    async def start(self, cfg, args):
        print(f"$ {_shown(args)} &", flush=True)
        with open(self.log, "wb") as out:
            self.proc = await anyio.open_process(
                [_distkv(), "-c", cfg, "client", *args], stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )

    def text(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    async def wait_for(self, marker, timeout=30):
        """The log's text once it contains ``marker``."""
        with anyio.fail_after(timeout):
            while marker not in self.text():
                if self.proc.returncode is not None:
                    raise StepFailed(f"{self.name} exited ({self.proc.returncode}):\n{self.text()}")
                await anyio.sleep(0.1)
        return self.text()

    async def wait_proc(self):
        if self.proc is not None:
            await self.proc.wait()

    async def stop(self, sig=signal.SIGTERM):
        p = self.proc
        if p is None or p.returncode is not None:
            return
        p.send_signal(sig)
        with anyio.move_on_after(10):
            await p.wait()
        if p.returncode is None:
            p.kill()
            await p.wait()


async def _holder(client, job):
    """The node whose run of ``job`` holds it now (from its state), or None."""
    res = await client.get(P(":.distkv.state.any") + (GROUP, job))
    v = res.get("value")
    return v.get("node") if isinstance(v, dict) else None


async def _wait_holder(client, job, not_on=None, timeout=30):
    with anyio.fail_after(timeout):
        while True:
            node = await _holder(client, job)
            if node is not None and node != not_on:
                return node
            await anyio.sleep(0.05)


async def _runners_part(cfg, workdir, procs):
    """Three runners, one any-node job, kill -9 of the one running it."""
    with open(cfg, encoding="utf-8") as f:
        client_cfg = yload(f, attr=True)
    src = os.path.join(workdir, "tick.py")
    with open(src, "w", encoding="utf-8") as f:
        f.write(TICK)
    print(f"\n--- {src} ---\n{TICK}---")
    await _step(cfg, ["code", "set", "demo.tick", "-s", src, "--async"], note="store the job's procedure (async code)")
    print("\n# start three runner daemons of group demo (on one machine here; one per machine in real life)")
    runners = {}
    for name in RUNNERS:
        r = _Background(name, os.path.join(workdir, f"runner-{name}.log"))
        await r.start(cfg, ["run", "all", "-g", GROUP, "--name", name])
        procs.append(r)
        runners[name] = r
    for r in runners.values():
        await r.wait_for("jobs found:")
    print(f"\n# what a runner says when it starts ({runners['r1'].log}):")
    print(runners["r1"].text().rstrip())
    await _step(
        cfg,
        ["run", "set", "ticker", "-c", "demo.tick", "-g", GROUP, "-t", "now"],
        note="store an any-node job: one live runner of the group runs it",
    )
    async with open_client(**client_cfg) as client:
        first = await _wait_holder(client, "ticker")
        await anyio.sleep(1.5)  # let it tick
        await _step(cfg, ["run", "why", "ticker", "-g", GROUP], note=f"which runner runs it? {first}")
        victim = runners[first]
        print(f"\n# the machine running it dies: kill -9 {victim.proc.pid} ({first})", flush=True)
        victim.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        second = await _wait_holder(client, "ticker", not_on=first)
        took = time.monotonic() - killed
        print(f"\n# {first} was killed; the job now runs on {second}: moved after {took:.1f} seconds", flush=True)
        await anyio.sleep(1.5)
    await _step(cfg, ["run", "why", "ticker", "-g", GROUP], note="and why says so, with its last output")
    await victim.wait_proc()
    return took


async def _procedures_part(cfg, workdir):
    """A procedure's life: call, list, bad code refused, diff, update."""
    src = os.path.join(workdir, "hello.py")
    with open(src, "w", encoding="utf-8") as f:
        f.write(HELLO)
    print(f"\n--- {src} ---\n{HELLO}---")
    await _step(
        cfg,
        ["code", "set", "demo.hello", "-s", src, "--var", "name", "-i", "Greets NAME"],
        note="store a procedure (compiled first; refused if it does not compile)",
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


async def _demo(workdir, keep):
    print("Starting a local DistKV node (MQTT broker + one server, loopback only) ...")
    procs = []
    async with local_cluster(1, workdir=os.path.join(workdir, "node")) as cl:
        cfg = cl.client_config
        print(f"Node s1 serves on 127.0.0.1:{cl.servers[0].port}.")
        print(f"CFG={cfg}")
        try:
            print("\n# the live status page (read-only, loopback only)")
            web = _Background("web", os.path.join(workdir, "web.log"))
            await web.start(cfg, ["run", "web", "-g", GROUP, "--bind", "127.0.0.1:0"])
            procs.append(web)
            url = (await web.wait_for("status page: http")).split("status page: ", 1)[1].split()[0]
            print(f"Status page: {url}")
            took = await _runners_part(cfg, workdir, procs)
            await _procedures_part(cfg, workdir)
            print(f"\nThe job moved to another runner {took:.1f} s after its runner was killed.")
            if keep:
                print(f"\nEverything keeps running: the status page is {url}")
                print(f"Use the node with: distkv -c {cfg} client run list -g {GROUP}")
                print("Stop everything with Ctrl-C (or kill -TERM " + str(os.getpid()) + ").", flush=True)
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
                    async for _ in sigs:
                        break
        finally:
            print("\nStopping the runners, the status page and the node ...", flush=True)
            with anyio.CancelScope(shield=True):
                for p in procs:
                    await p.stop()
    print("Done.")


def main(argv=None):
    """Run the demo; exit status 0 when every step did what it should."""
    p = argparse.ArgumentParser(prog="distkv-code-demo", description="Show distkv-code at work on a local node.")
    p.add_argument("--keep", action="store_true", help="leave the node, runners and status page running until Ctrl-C")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="distkv-code-demo-") as d:
        try:
            anyio.run(_demo, d, args.keep, backend="trio")
        except StepFailed as exc:
            print(f"Error: demo step failed: {exc}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)


if __name__ == "__main__":
    main()
