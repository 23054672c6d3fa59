"""Helpers for tests with real runner daemons (``distkv client run all``)."""

import itertools
import os
import signal
import subprocess
import time

import anyio

from tests.fixtures import DISTKV


class Daemon:
    """One ``distkv client run all`` process."""

    def __init__(self, config, *args, env=None, log=None):
        self.args = [DISTKV, "-c", config, "client", "run", "all", *args]
        e = dict(os.environ)
        if env:
            e.update(env)
        self.log = log
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e)
        if log:
            out.close()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def term(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def alive(self):
        return self.proc.poll() is None


def query(config, fn):
    """Run ``await fn(client)`` with a client on ``config``; return its result."""
    from distkv.client import open_client
    from moat.util import yload

    with open(config, encoding="utf-8") as f:
        cfg = yload(f, attr=True)

    async def main():
        async with open_client(**cfg) as c:
            return await fn(c)

    return anyio.run(main, backend="trio")


def runs(config, prefix=("test", "runs")):
    """The run records: list of dicts (job, node, start, stop, v)."""
    from moat.util import Path

    async def get(c):
        res = []
        try:
            async for r in c.get_tree(Path.build(prefix)):
                v = r.get("value")
                if isinstance(v, dict) and "start" in v:
                    res.append(dict(v, job=str(r.path[0])))
        except Exception:  # nothing recorded yet
            pass
        return res

    return query(config, get)


def wait_until(pred, timeout=60, step=0.3, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        res = pred()
        if res:
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def check_no_overlap(records, ended=None):
    """No two runs of one job overlap.  ``ended``: {node: time} at which a
    killed node's unfinished runs count as ended."""
    ended = ended or {}
    by_job = {}
    for r in records:
        stop = r.get("stop")
        if stop is None:
            stop = ended.get(r["node"], float("inf"))
        by_job.setdefault(r["job"], []).append((r["start"], stop, r["node"]))
    for job, rs in by_job.items():
        rs.sort()
        for (s1, e1, n1), (s2, _e2, n2) in itertools.pairwise(rs):
            assert e1 <= s2, f"{job}: run on {n1} ({s1:.3f}..{e1:.3f}) overlaps run on {n2} from {s2:.3f}"


RECORDER = """
import anyio, time
from moat.util import P
me = _entry.root.node
start = time.time()
key = P("test.runs") + (name, me, str(int(start * 1000000)))
await _client.set(key, value={"start": start, "node": me, "v": VERSION})
try:
    while True:
        await anyio.sleep(0.5)
finally:
    with anyio.CancelScope(shield=True):
        await _client.set(key, value={"start": start, "stop": time.time(), "node": me, "v": VERSION})
"""
