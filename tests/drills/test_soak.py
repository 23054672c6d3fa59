"""The restart soak: a runner daemon restarted 1000 times leaves the
store's entry count flat (issue 15).

`run_daemon` (what ``distkv client run all -g GROUP`` calls) is started on
a fresh client, as a new process would, and stopped by a real SIGTERM
through its own signal receiver, against DistKV's in-process server
(under the autojump clock: a restart costs about 0.1-0.15 s of CPU
instead of 1-2 s for a process).  It serves every kind of job: for each
kind one that fails at every run (state, output with a traceback, error
record) and one that succeeds; each restart deletes the single-node job
the restart before created and creates a new one (a job deleted while
its runner is down: its state and outputs must go).  Every `WAIT`-th
restart waits until the jobs ran again (every `FULL`-th the any-node
ones too, which wait for their group); the others start and stop.  Every
``EVERY``-th restart the whole store is counted (``.distkv`` included:
states, outputs, error records, runner records, status page
announcements, procedures, ...), by place, and once the outputs have
filled up (`FLAT_FROM`) no place may hold more in the soak's second half
than at its most in the first half (a count may dip by one: a run
stopped before its code started leaves no output, and the output of the
run before the last ``output_runs`` goes all the same; a leak grows).

``DRILLS=long`` restarts 3000 times; ``SOAK_RESTARTS=N`` N times,
``SOAK_WAIT``/``SOAK_FULL`` set `WAIT`/`FULL`.  On a 2-CPU machine 1000
restarts take about 140 s (a bare start and stop of the three runner
roots costs about 0.095 s of CPU, which sets the floor at 95 s).
"""

import collections
import os
import signal
import time

import anyio
import trio
from moat.util import Path

from distkv_ext.code import store_procedure
from distkv_ext.run import ALL_KINDS, run_daemon
from distkv_ext.run._ops import remove_job, store_job
from tests.drills.test_drills import LONG
from tests.helpers import in_process_cluster, wait_for

RESTARTS = int(os.environ.get("SOAK_RESTARTS") or (3000 if LONG else 1000))
EVERY = int(os.environ.get("SOAK_EVERY") or 50)  # count the store every EVERY-th restart
#: restarts that may still add entries: outputs fill up to ``output_runs``
#: runs per job, any-node jobs run for sure every 10th restart
FLAT_FROM = 40
GROUP = "sk"
NODE = "soak"
FAST = {"heartbeat": 0.1, "timeout": 0.3, "settle": 0.05, "rebalance_delay": 0.1, "output_runs": 3}
WAIT = int(
    os.environ.get("SOAK_WAIT") or 5
)  # every WAIT-th restart waits for the jobs to run (the others: a start and a stop)
FULL = int(os.environ.get("SOAK_FULL") or 10)  # ... every FULL-th the any-node ones too
REPEAT = 0.2  # seconds between runs (virtual time)
FAILS = "print('about to fail')\nraise RuntimeError('always')\n"
WORKS = "print('fine')\nreturn 1\n"
WHERE = 4  # entries are counted by the first WHERE elements of their path


def where(path):
    """The place of an entry: its path's first `WHERE` elements (below
    which run ids, job names and error record ids vary)."""
    return str(Path.build(tuple(path)[:WHERE]))


async def count_store(client):
    """(number of entries, {place: number}) of the whole store."""
    places = collections.Counter()
    async for r in client.get_tree(Path()):
        places[where(r.path)] += 1
    return sum(places.values()), places


def growth(counts):
    """The places holding more in the second half of ``counts`` (a list
    of (restart, {place: number})) than at their most in the first half:
    {place: (most before, most after)}."""
    half = len(counts) // 2
    before, after = collections.Counter(), collections.Counter()
    for k, (_, places) in enumerate(counts):
        most = before if k < half else after
        for p, n in places.items():
            most[p] = max(most[p], n)
    return {p: (before[p], n) for p, n in after.items() if n > before[p]}


async def add_jobs(c):
    await store_procedure(c, "soak.fails", lambda old: {"code": FAILS})
    await store_procedure(c, "soak.works", lambda old: {"code": WORKS})
    for kind in ALL_KINDS:
        for name, code in (("bad", "soak.fails"), ("good", "soak.works")):
            await store_job(
                c,
                kind,
                GROUP,
                name,
                lambda old, code=code: {
                    "code": code,
                    "target": time.time(),
                    "repeat": REPEAT,
                    "delay": REPEAT,
                    "max_delay": REPEAT,
                },
                node=NODE if kind == "single" else None,
            )


def runs_of(roots):
    """{(kind, job): runs} of the jobs the daemon's roots see."""
    res = {}
    for r in roots:
        for e in r.all_children:
            st = r.state_for(e.job_path, create=False)
            res[(r.policy.kind, str(e.job_name))] = (getattr(st, "runs", None) or 0) if st is not None else 0
    return res


async def restart(st, i, before):
    """Start the daemon on a new client; every `WAIT`-th time wait until
    its jobs ran more often than ``before`` says (every `FULL`-th time
    the any-node ones too, which wait for the group to form); SIGTERM
    it; return the runs."""
    async with st.client() as c:
        if i:
            await remove_job(c, "single", GROUP, f"tmp{i - 1}", node=NODE)
        await store_job(
            c, "single", GROUP, f"tmp{i}", lambda old: {"code": "soak.works", "target": time.time()}, node=NODE
        )
        async with anyio.create_task_group() as tg:
            roots = await tg.start(
                lambda task_status: run_daemon(c, ALL_KINDS, GROUP, node=NODE, cfg=FAST, task_status=task_status)
            )
            kinds = ALL_KINDS if i % FULL == 0 else ("single", "all") if i % WAIT == 0 else ()
            wanted = {(k, j) for k in kinds for j in ("bad", "good")}

            def ran():
                now = runs_of(roots)
                return wanted <= {k for k, v in now.items() if v > before.get(k, 0)}

            await wait_for(ran, timeout=60, step=REPEAT / 2, what=f"restart {i}: the jobs ran")
            os.kill(os.getpid(), signal.SIGTERM)
    if (i + 1) % WAIT == 0:
        await anyio.sleep(REPEAT)  # the jobs are due again at the next start
    return runs_of(roots)


async def test_1000_restarts_keep_the_store_flat(autojump_clock):
    t0 = time.perf_counter()
    counts = []
    async with in_process_cluster(n=1, tocks=10**9) as st:
        # jump as soon as the loop idles (stdtest waits 20 ms of real time
        # for networking; each restart would cost a second of it)
        trio.lowlevel.current_clock().autojump_threshold = 0.002
        async with st.client() as c0:
            await add_jobs(c0)
            runs = {}
            for i in range(RESTARTS):
                runs = await restart(st, i, runs)
                if i % EVERY == 0 or i == RESTARTS - 1:
                    counts.append((i, *await count_store(c0)))
    took = time.perf_counter() - t0
    print(f"{RESTARTS} restarts in {took:.1f} s; entries: {[(i, n) for i, n, _ in counts]}")
    flat = [(i, n, p) for i, n, p in counts if i >= FLAT_FROM]
    assert len(flat) >= 4, "restart more often than FLAT_FROM"
    assert not growth([(i, p) for i, _, p in flat]), growth([(i, p) for i, _, p in flat])
    half = len(flat) // 2
    assert max(n for _, n, _ in flat[half:]) <= max(n for _, n, _ in flat[:half]), [(i, n) for i, n, _ in counts]
