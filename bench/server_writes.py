"""What a group's watches cost the store: writes per second that one real
DistKV server takes while nobody watches the written subtree, and while
five client processes watch it (as five runners watch their group's
states), interleaved, in the same run.

Every runner of a group watches all of its jobs' states, so each state
write is sent on to every runner: this is the ceiling on runs per second
that the scale benchmark's group meets (two state writes per run).

``./dev.sh bench server_writes [--writes N] [--watchers W] [--rounds R]``
(about half a minute).  Prints writes/s per round and the ratio watched /
unwatched.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import anyio
from moat.util import P, yload

from distkv_ext.devtools.broker import first_line
from distkv_ext.devtools.node import local_cluster

WHERE = P("bench.server_writes")
#: A watching client: counts what it hears (a runner does more with it)
WATCHER = r"""
import sys, anyio
from moat.util import P, yload
from distkv.client import open_client

async def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = yload(f, attr=True)
    async with open_client(**cfg) as c:
        async with c.watch(P(sys.argv[2]), fetch=False, max_depth=3) as w:
            print("ready", flush=True)
            async for _ in w:
                pass

anyio.run(main)
"""
#: A job state as a run's end writes it
STATE = {
    "started": 1.0,
    "stopped": 2.0,
    "node": None,
    "last_node": "r1",
    "reason": "finished",
    "computed": 3.0,
    "result": 1,
}


async def _rate(client, n: int, inflight: int = 50) -> float:
    limiter = anyio.CapacityLimiter(inflight)

    async def write(i: int) -> None:
        async with limiter:
            await client.set(WHERE + (f"j{i % 1000}",), value=dict(STATE, runs=i))

    t = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(write, i)
    return n / (time.monotonic() - t)


def _watchers(config: str, n: int) -> list[subprocess.Popen]:
    """Start ``n`` watching processes; return once each watches (each has
    a minute to say so: one that hangs is killed, with the others)."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WATCHER, config, str(WHERE)], stdout=subprocess.PIPE) for _ in range(n)
    ]
    for p in procs:
        if p.stdout is None or first_line(p.stdout, 60) != b"ready":
            for q in procs:
                q.kill()
            raise SystemExit("a watcher did not start")
    return procs


async def _main(writes: int, watchers: int, rounds: int) -> None:
    from distkv.client import open_client

    with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
        async with local_cluster(1, workdir=tmp) as cl:
            with open(cl.client_config, encoding="utf-8") as f:
                cfg = yload(f, attr=True)
            res: dict[int, list[float]] = {0: [], watchers: []}
            async with open_client(**cfg) as c:
                await _rate(c, 500)  # warm up
                for _ in range(rounds):
                    for w in (0, watchers):
                        procs = _watchers(cl.client_config, w)
                        try:
                            res[w].append(await _rate(c, writes))
                        finally:
                            for p in procs:
                                p.kill()
                                p.wait()
                        print(f"  {w} watchers: {res[w][-1]:.0f} writes/s", flush=True)
    plain, watched = statistics.median(res[0]), statistics.median(res[watchers])
    print(f"server writes/s (median of {rounds}): unwatched {plain:.0f}, {watchers} watchers {watched:.0f}")
    print(f"ratio watched / unwatched: {watched / plain:.2f}")


def main(argv=()):
    ap = argparse.ArgumentParser(prog="bench server_writes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=3000, help="writes per round (3000)")
    ap.add_argument("--watchers", type=int, default=5, help="watching processes (5)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds, each unwatched then watched (2)")
    a = ap.parse_args(list(argv))
    if a.writes < 1 or a.watchers < 1 or a.rounds < 1:
        ap.error("--writes, --watchers and --rounds must be at least 1")
    print(f"Server writes: one DistKV server, {a.writes} writes a round, 0 vs {a.watchers} watching processes")
    anyio.run(_main, a.writes, a.watchers, a.rounds, backend="trio")


if __name__ == "__main__":
    main(sys.argv[1:])
