"""What process mode costs: a run of a trivial procedure (``return 1``)
as sync code in the runner vs in process mode (a child process, its own
DistKV connection), interleaved, against an in-process DistKV server
(DistKV's test harness; the child connects over TCP).

Measured per run: from writing the job's start time to its state saying
the run ended with its result.  Also: how long ``python -m
distkv_ext.run._child`` takes just to start and import (stdin closed at
once: it exits before it connects).

``./dev.sh bench procmode`` (about a minute).  Prints medians.
"""

import statistics
import subprocess
import sys
import time

import anyio
from moat.util import P

ROUNDS = 10
FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.0, "rebalance_delay": 0.5}


async def _runs() -> dict[str, list[float]]:
    from distkv.mock.mqtt import stdtest

    from distkv_ext.code import CodeRoot
    from distkv_ext.run import AnyRunnerRoot

    res: dict[str, list[float]] = {"sync": [], "process": []}
    async with stdtest(n=1, args={"init": 123}, tocks=100000) as st, st.client() as client:
        cr = await CodeRoot.as_handler(client)
        await cr.add("bench.sync", code="return 1")
        await cr.add("bench.process", code="return 1", process=True)
        r = await AnyRunnerRoot.as_handler(client, subpath=("any", "benchpm"), code=cr, node="b1", cfg=FAST)
        for i in range(ROUNDS):
            for mode in res:
                job = r.follow(P(f"{mode}.j{i}"), create=True)
                job.code = P(f"bench.{mode}")
                t0 = time.perf_counter()
                await job.run_at(time.time())
                while not (job.state.runs and job.state.node is None and job.state.stopped):
                    await anyio.sleep(0.005)
                res[mode].append(time.perf_counter() - t0)
                assert job.state.result == 1, job.state.error
    return res


def _child_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "distkv_ext.run._child"], stdin=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> None:
    res = anyio.run(_runs, backend="trio")
    starts = [_child_start() for _ in range(ROUNDS)]
    med = {k: statistics.median(v) * 1000 for k, v in res.items()}
    print(f"procmode: run of 'return 1', median of {ROUNDS}, interleaved:")
    print(f"  sync code in the runner: {med['sync']:.0f} ms")
    print(f"  process mode:            {med['process']:.0f} ms  (+{med['process'] - med['sync']:.0f} ms)")
    print(f"  child start and imports alone: {statistics.median(starts) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
