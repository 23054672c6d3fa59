"""Clock-skew drill (issue 15, "Time"): three runner daemons of one
any-node group whose clocks are ten minutes ahead, ten minutes behind and
right (Debian's ``faketime``; a Raspberry Pi without a real-time clock
boots like this), against a DistKV server and broker with the right clock.

Repeating jobs are set with target "now" by this (right) clock.  Each run
records its start and end with ``time.monotonic()``, which faketime leaves
alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``) and which all processes of this
machine share, so the records compare on one clock whatever the runners'
wall clocks say.  Checked: every job runs (none starved), no two runs of
a job overlap, and the wait from the end of a run to the next start is the
job's ``repeat`` within a second; then the runner with the right clock is
killed with -9, so the survivors read states stopped by a machine whose
clock differs from theirs, and the same is checked of them (except the
one wait that spans the kill).

Before runners stopped comparing clocks, this failed: the runner behind
never started the jobs assigned to it (their target lay ten minutes in
its future: starved), and a job a runner behind took over after another
node's run waited out ``stopped + repeat`` by that node's clock.
"""

import itertools
import json
import shutil
import time

import pytest

from distkv_ext.code import store_procedure
from distkv_ext.run import hear_groups
from distkv_ext.run._ops import store_job
from tests.drills.harness import Fleet, Runs
from tests.helpers import wait_until

GROUP = ["--timeout", "2", "--heartbeat", "0.5"]
#: runner name -> faketime's offset (None: the right clock, no faketime)
CLOCKS = {"ahead": "+10m", "behind": "-10m", "right": None}
#: job -> repeat (seconds)
JOBS = {f"c{i}": 2.0 if i % 2 else 3.0 for i in range(6)}
TOLERANCE = 1.0  # seconds: the "repeat intervals kept within a second"
RUNS_BEFORE = 4  # runs of each job before the kill
RUNS_AFTER = 3  # and after it

#: Records each run's start and end on the machine's monotonic clock.
RECORDER = """
import anyio, json, os, time
me = _entry.root.node
start = time.monotonic()
def note(**kw):
    with open(runlog, "a") as f:
        f.write(json.dumps(dict(job=name, node=me, pid=os.getpid(), start=start, wall=time.time(), **kw)) + "\\n")
note()
try:
    await anyio.sleep(0.3)
finally:
    note(stop=time.monotonic())
"""


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(str(tmp_path), 1)
    try:
        yield f.start()
    finally:
        f.stop()


def faketime():
    """faketime's path: the drill needs it (``./dev.sh test`` installs
    Debian's package): fail, never skip, without it."""
    path = shutil.which("faketime")
    if path is None:
        pytest.fail("faketime is not installed (Debian: apt-get install faketime; ./dev.sh test does)", pytrace=False)
    return path


def _live(f):
    async def go(c):
        heard = await hear_groups(c, {("any", "clk", None): list(CLOCKS)}, timeout=2.5)
        return heard[("any", "clk", None)].live

    return f.client(go)


def _add_jobs(f):
    async def go(c):
        await store_procedure(
            c, "clock.rec", lambda old: dict(code=RECORDER, is_async=True, variables=["name", "runlog"], default={})
        )
        for j, repeat in JOBS.items():
            data = {"name": j, "runlog": f.runlog}
            await store_job(
                c,
                "any",
                "clk",
                j,
                lambda old, d=data, r=repeat: {"code": "clock.rec", "data": d, "target": time.time(), "repeat": r},
            )

    f.client(go)


def _skews(f):
    """node -> how far its wall clock is from ours (seconds), by its runs' records."""
    base = time.time() - time.monotonic()  # our wall clock on the monotonic scale
    res = {}
    with open(f.runlog, encoding="utf-8") as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by kill -9
            if "stop" not in r:
                res[r["node"]] = r["wall"] - (r["start"] + base)
    return res


def _runs(f, kills):
    return Runs.read(f.runlog, kills)


def _enough(f, kills, n, after=None, nodes=None):
    runs = _runs(f, kills)
    for j in JOBS:
        rs = [r for r in runs.runs.get(j, ()) if after is None or r["start"] > after]
        if len(rs) < n or (nodes is not None and any(r["node"] not in nodes for r in rs)):
            return None
    return runs


def _waits(runs, kill):
    """(job, wait, repeat) for each wait between two runs of a job (end
    of one to the start of the next), but the one that spans the kill;
    and the waits that do."""
    kept, spanning = [], []
    for j, rs in runs.runs.items():
        for a, b in itertools.pairwise(rs):
            wait = b["start"] - (a["end"] if a["end"] is not None else float("inf"))
            (spanning if a["start"] <= kill < b["start"] else kept).append((j, wait, JOBS[j], a["node"], b["node"]))
    return kept, spanning


def test_clock_skew(fleet, drill_report):
    fake = faketime()
    f = fleet
    env = {"FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    rs = {}
    for name, offset in CLOCKS.items():
        wrap = () if offset is None else (fake, "-f", offset)
        rs[name] = f.runner(name, 0, "-g", "clk", *GROUP, wrap=wrap, env=env)
    # the jobs come once the group is complete: a runner that joins later
    # counts a repeat from when it started (at most one wait late), which
    # the drill would see as a wait too long
    wait_until(lambda: _live(f) == frozenset(CLOCKS), timeout=60, what="all three runners in the group")
    time.sleep(2.5)  # each runner has heard the group for a timeout: ready
    _add_jobs(f)
    kills = {}
    runs = wait_until(
        lambda: _enough(f, kills, RUNS_BEFORE), timeout=60, what=f"every job to run {RUNS_BEFORE} times (none starved)"
    )
    nodes = {r["node"] for rr in runs.runs.values() for r in rr}
    assert nodes == set(CLOCKS), f"runs only on {sorted(nodes)}"
    skews = _skews(f)
    want = {"ahead": 600, "behind": -600, "right": 0}
    assert set(skews) == set(want) and all(abs(skews[n] - s) < 5 for n, s in want.items()), (
        f"faketime did not set the runners' clocks: {skews}"
    )

    victim = rs["right"]
    victim.supervise = False  # it stays dead: the survivors hold every job from now on
    kill = time.monotonic()
    kills[victim.pid] = kill
    victim.kill9()
    survivors = set(CLOCKS) - {"right"}
    runs = wait_until(
        lambda: _enough(f, kills, RUNS_AFTER, after=kill, nodes=survivors),
        timeout=60,
        what=f"every job to run {RUNS_AFTER} times on the survivors",
    )

    overlaps = runs.overlaps()
    kept, spanning = _waits(runs, kill)
    off = [w for w in kept if abs(w[1] - w[2]) > TOLERANCE]
    dev = [w[1] - w[2] for w in kept]
    drill_report(
        f"clock skew +-10 min (3 runners, 6 jobs, kill -9 of the right clock; {len(dev)} waits: repeat "
        f"{min(dev):+.2f}..{max(dev):+.2f} s)",
        sum(len(v) for v in runs.runs.values()),
        len(JOBS),
        0,
        len(overlaps),
        max(w for _, w, *_ in spanning) if spanning else None,
    )
    assert overlaps == []
    assert off == [], f"waits (job, seconds, repeat, node before, node after) off by more than {TOLERANCE} s"
    assert len(spanning) == len(JOBS)
