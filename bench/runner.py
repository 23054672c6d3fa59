"""Runner benchmarks, ours vs DistKV 0.65's built-in runner (same run).

* failover: kill -9 the runner process that runs a job; seconds until
  the job has started on another node (3 servers, 3 runner processes);
* start rate: jobs all due at one moment, started per second by 3 runners
  (ours: 300 jobs; built-in: 30, as it starts one per second);
* memory: resident size of one runner process holding 1000 idle jobs.

``./dev.sh bench runner`` (takes about 5 minutes: the built-in's failover
alone needs ~3).  Prints the figures and the ratios.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

import anyio
from moat.util import P, yload

from distkv_ext.devtools.node import local_cluster

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)

RECORD = """
import anyio, time
await _client.set(_P(":.bench.starts") + (name, str(time.time())), value=time.time())
while True:
    await anyio.sleep(1)
"""


def _rss_mb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Runners:
    """Runner processes of one kind ("ours" or "distkv") for one group."""

    def __init__(self, kind, cl, group, n, workdir):
        self.procs = {}
        for i in range(n):
            name = f"{kind[0]}{i + 1}"
            cfg = cl.servers[i % len(cl.servers)].config
            if kind == "ours":
                args = [os.path.join(BIN, "distkv"), "-c", cfg, "client", "run", "all", "-g", group, "--name", name]
            else:
                args = [sys.executable, os.path.join(HERE, "distkv_runner.py"), cfg, group, name]
            log = open(os.path.join(workdir, f"{group}-{name}.log"), "wb")
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


async def _starts(c, name=None):
    res = {}
    try:
        async for r in c.get_tree(P(":.bench.starts")):
            if "value" in r:
                res.setdefault(str(r.path[0]), []).append(r.value)
    except Exception:
        pass
    return res if name is None else res.get(name, [])


async def _add_jobs(c, group, names, target):
    async with anyio.create_task_group() as tg:
        for n in names:
            tg.start_soon(
                lambda n=n: c.set(
                    P(":.distkv.run.any") + (group, n),
                    value={"code": P("bench.record"), "data": {"name": n}, "target": target, "delay": 1},
                )
            )


async def failover(c, cl, kind, workdir):
    group = f"fo{kind}"
    rs = Runners(kind, cl, group, 3, workdir)
    try:
        job = f"{group}job"
        await anyio.sleep(3)
        await _add_jobs(c, group, [job], time.time())
        with anyio.fail_after(600):
            while not await _starts(c, job):
                await anyio.sleep(0.2)
            while True:
                # DistKV 0.65 keeps its states one level deeper than its docs
                # say (.distkv state state any ...): ClientRoot.as_handler
                # prepends the key to the subpath
                base = P(":.distkv.state.any") if kind == "ours" else P(":.distkv.state.state.any")
                st = await c.get(base + (group, job))
                node = st.get("value", {}).get("node")
                if node:
                    break
                await anyio.sleep(0.2)
        before = len(await _starts(c, job))
        rs.kill(node)
        t0 = time.time()
        with anyio.fail_after(900):
            while len(await _starts(c, job)) <= before:
                await anyio.sleep(0.1)
        return time.time() - t0
    finally:
        rs.stop()


async def start_rate(c, cl, kind, n_jobs, workdir):
    group = f"sr{kind}"
    rs = Runners(kind, cl, group, 3, workdir)
    try:
        await anyio.sleep(8 if kind == "distkv" else 4)  # let the group form
        names = [f"{group}{i}" for i in range(n_jobs)]
        target = time.time() + 3
        await _add_jobs(c, group, names, target)
        with anyio.fail_after(1200):
            while True:
                st = await _starts(c)
                got = [min(st[n]) for n in names if n in st]
                if len(got) == n_jobs:
                    break
                await anyio.sleep(0.5)
        return n_jobs / max(max(got) - target, 1e-3)
    finally:
        rs.stop()


async def memory(c, cl, kind, workdir):
    group = f"mem{kind}"
    names = [f"idle{i}" for i in range(1000)]
    await _add_jobs(c, group, names, 0)  # target 0: never started
    rs = Runners(kind, cl, group, 1, workdir)
    try:
        await anyio.sleep(15)
        return _rss_mb(next(iter(rs.procs.values())).pid)
    finally:
        rs.stop()


async def _main(which):
    from distkv.client import open_client

    from distkv_ext.code import CodeRoot

    with tempfile.TemporaryDirectory() as d:
        async with local_cluster(3, workdir=d) as cl:
            with open(cl.client_config, encoding="utf-8") as f:
                cfg = yload(f, attr=True)
            async with open_client(**cfg) as c:
                cr = await CodeRoot.as_handler(c)
                await cr.add("bench.record", code=RECORD, variables=["name"], is_async=True)
                if "memory" in which:
                    ours, theirs = await memory(c, cl, "ours", d), await memory(c, cl, "distkv", d)
                    print(
                        f"memory, 1000 idle jobs   ours {ours:6.1f} MB   built-in {theirs:6.1f} MB   ratio {ours / theirs:5.2f}"
                    )
                if "rate" in which:
                    ours = await start_rate(c, cl, "ours", 300, d)
                    theirs = await start_rate(c, cl, "distkv", 30, d)
                    print(
                        f"start rate, 3 runners    ours {ours:6.1f} jobs/s (300 jobs)   built-in {theirs:5.2f} jobs/s (30 jobs)   ratio {ours / theirs:6.1f}  (goal >= 100 jobs/s: {'met' if ours >= 100 else 'MISSED'})"
                    )
                if "failover" in which:
                    ours = await failover(c, cl, "ours", d)
                    theirs = await failover(c, cl, "distkv", d)
                    print(
                        f"failover after kill -9   ours {ours:6.2f} s   built-in {theirs:6.1f} s   ratio {ours / theirs:6.3f}  (goal <= 5 s: {'met' if ours <= 5 else 'MISSED'})"
                    )


def main(which=("memory", "rate", "failover")):
    print("Runner benchmarks: 3 DistKV servers, runner processes on loopback")
    anyio.run(_main, which, backend="trio")


if __name__ == "__main__":
    main(sys.argv[1:] or ("memory", "rate", "failover"))
