"""Fault drills with real processes: a broker process, ``distkv server``
processes and ``distkv client run all`` daemons, supervised like systemd
would (see `harness`).  Each drill is bounded in time and count and adds
a row to the report (conftest).  ``DRILLS=long`` makes them longer (the
README's soak command); the default is the short variant CI runs.
"""

import os
import random
import time

import pytest

from distkv_ext.code import store_procedure
from distkv_ext.run._ops import store_job

from ..procs import wait_until
from .harness import RECORDER, Fleet

LONG = os.environ.get("DRILLS", "short") == "long"
GROUP = ["--timeout", "2", "--heartbeat", "0.5"]
KILLS = 40 if LONG else 20
CUT = 30  # seconds a runner is cut off from its server


@pytest.fixture
def fleet(tmp_path):
    made = []

    def make(n=3, proxies=False):
        f = Fleet(str(tmp_path), n, proxies).start()
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


def add_jobs(f, group, jobs, kind="any", node=None):
    async def go(c):
        await store_procedure(
            c, "drill.rec", lambda old: dict(code=RECORDER, is_async=True, variables=["name", "runlog"], default={})
        )
        for j in jobs:
            data = {"name": j, "runlog": f.runlog}
            await store_job(c, kind, group, j, lambda old, d=data: {"code": "drill.rec", "data": d, "target": time.time()}, node=node)

    f.client(go)


def once_each(f, jobs):
    """The runs if every job runs exactly once right now, else None."""
    runs = f.runs()
    return runs if all(len(runs.running(j)) == 1 for j in jobs) else None


def check_end(f, jobs, what):
    runs = wait_until(lambda: once_each(f, jobs), timeout=60, what=f"{what}: every job running exactly once")
    return runs, runs.overlaps()


def total_runs(runs):
    return sum(len(v) for v in runs.runs.values())


def test_kill9_runner_repeatedly(fleet, drill_report):
    f = fleet(3)
    jobs = [f"k{i}" for i in range(9)]
    add_jobs(f, "k", jobs)
    rs = [f.runner(f"r{i + 1}", i, "-g", "k", *GROUP) for i in range(3)]
    runs = wait_until(lambda: once_each(f, jobs), timeout=60, what="all jobs running")
    rnd = random.Random(7)
    worst = 0.0
    for _ in range(KILLS):
        busy = [r for r in rs if any(x["pid"] == r.pid for j in jobs for x in runs.running(j))]
        victim = rnd.choice(busy)
        t, pid = victim.kill9()
        hit = [j for j in jobs if any(x["pid"] == pid for x in runs.running(j))]
        runs = wait_until(
            lambda: (lambda R: R if all(R.started_after(j, t) for j in hit) and once_each(f, jobs) else None)(f.runs()),
            timeout=60,
            what="the victim's jobs to run elsewhere",
        )
        worst = max([worst] + [min(x["start"] for x in runs.started_after(j, t)) - t for j in hit])
        wait_until(lambda: victim.starts > 1 and victim.proc.poll() is None, what="the supervisor's restart")
        time.sleep(1.5)  # the restarted runner joins the group
        runs = f.runs()
    runs, overlaps = check_end(f, jobs, "after the kills")
    drill_report(f"kill -9 of a runner x{KILLS} (3 runners, 9 jobs)", total_runs(runs), len(jobs), 0, len(overlaps), worst)
    assert overlaps == []
    assert worst < 10


def test_kill9_server_under_runners(fleet, drill_report):
    """The any-node jobs of the runner on the killed server move to the
    others.  (Whether single-node and all-node jobs of that host come back
    once the server rejoins is not asserted yet: in this drill they did
    not within 120 s; see the README.)"""
    f = fleet(3)
    jobs = [f"s{i}" for i in range(6)]
    add_jobs(f, "sk", jobs)
    for i in range(3):
        f.runner(f"r{i + 1}", i, "-g", "sk", *GROUP)
    runs = wait_until(lambda: once_each(f, jobs), timeout=60, what="all jobs running")
    hit = [j for j in jobs if runs.running(j)[0]["node"] == "r3"]
    t, _ = f.servers[2].kill9()
    f.runners["r3"].kills.append((t, f.runners["r3"].pid))  # it loses its server now
    runs = wait_until(
        lambda: (lambda R: R if all(R.started_after(j, t, exclude_node="r3") for j in hit) and once_each(f, jobs) else None)(f.runs()),
        timeout=60,
        what="r3's jobs to move",
    )
    moved = max([0.0] + [min(x["start"] for x in runs.started_after(j, t, exclude_node="r3")) - t for j in hit])
    wait_until(lambda: f.runners["r3"].exits, timeout=30, what="r3 to leave")
    runs = f.runs()
    overlaps = runs.overlaps()
    exits = [rc for _, rc in f.runners["r3"].exits]
    drill_report("kill -9 of the server under a runner", total_runs(runs), len(jobs), 0, len(overlaps), moved)
    assert overlaps == []
    assert set(exits) <= {5}, exits  # 'lost the server'; the supervisor restarts it


def test_runner_cut_off_from_its_server(fleet, drill_report):
    f = fleet(3, proxies=True)
    jobs = [f"c{i}" for i in range(6)]
    add_jobs(f, "cut", jobs)
    add_jobs(f, "cuts", ["cut-single"], kind="single", node="r3")
    rs = [f.runner(f"r{i + 1}", i, "-g", "cut", *GROUP) for i in range(3)]
    f.runner("r3s", 2, "-g", "cuts", "-n", "r3")
    runs = wait_until(lambda: once_each(f, jobs + ["cut-single"]), timeout=60, what="all jobs running")
    hit = [j for j in jobs if runs.running(j)[0]["node"] == "r3"]
    assert hit, "r3 runs some of the jobs"
    t = time.time()
    f.client_cables[2].freeze()
    runs = wait_until(
        lambda: (lambda R: R if all(R.started_after(j, t, exclude_node="r3") for j in hit) else None)(f.runs()),
        timeout=CUT,
        what="r3's jobs to move while it is cut off",
    )
    moved = max(min(x["start"] for x in runs.started_after(j, t, exclude_node="r3")) - t for j in hit)
    time.sleep(max(0, CUT - (time.time() - t)))
    f.client_cables[2].heal()
    healed = time.time()
    wait_until(lambda: all(r.proc.poll() is None for r in rs), what="the runners alive")
    time.sleep(5)  # settle: r3 back in the group, nothing doubled after healing
    runs, overlaps = check_end(f, jobs + ["cut-single"], "after healing")
    drill_report(f"runner cut off from its server {CUT} s", total_runs(runs), 7, 0, len(overlaps), moved)
    assert overlaps == []
    assert healed - t >= CUT


def test_partition_of_the_servers(fleet, drill_report):
    """r1 and r2 on s1, r3 on s2; s2 is cut off the broker (so from s1)."""
    f = fleet(2, proxies=True)
    jobs = [f"p{i}" for i in range(6)]
    add_jobs(f, "part", jobs)
    f.runner("r1", 0, "-g", "part", *GROUP)
    f.runner("r2", 0, "-g", "part", *GROUP)
    f.runner("r3", 1, "-g", "part", *GROUP)
    runs = wait_until(lambda: once_each(f, jobs), timeout=60, what="all jobs running")
    hit = [j for j in jobs if runs.running(j)[0]["node"] == "r3"]
    t = time.time()
    f.broker_cables[1].freeze()
    runs = wait_until(
        lambda: (lambda R: R if all(R.started_after(j, t, exclude_node="r3") for j in hit) and once_each(f, jobs) else None)(f.runs()),
        timeout=30,
        what="the majority side to take over r3's jobs",
    )
    moved = max([0.0] + [min(x["start"] for x in runs.started_after(j, t, exclude_node="r3")) - t for j in hit])
    assert not [j for j in jobs if runs.running(j)[0]["node"] == "r3"]  # r3 fenced itself
    time.sleep(10)
    f.broker_cables[1].heal()
    time.sleep(10)
    runs, overlaps = check_end(f, jobs, "after healing")
    drill_report("partition 2+1 runners, healed after 10 s", total_runs(runs), len(jobs), 0, len(overlaps), moved)
    assert overlaps == []


def test_broker_restart_fences_and_never_doubles(fleet, drill_report):
    """DistKV 0.65's servers stay connected but deaf after the broker
    restarts (moat-mqtt reconnects with a clean session and DistKV does
    not subscribe again).  The runners then cannot hear each other: each
    fences itself and stops its any-node jobs, so nothing runs twice; the
    jobs resume only when the DistKV servers are restarted (README)."""
    f = fleet(3)
    jobs = [f"b{i}" for i in range(6)]
    add_jobs(f, "brk", jobs)
    for i in range(3):
        f.runner(f"r{i + 1}", i, "-g", "brk", *GROUP)
    wait_until(lambda: once_each(f, jobs), timeout=60, what="all jobs running")
    f.broker.kill9()
    time.sleep(15)  # the supervisor restarts the broker after 1 s
    runs = f.runs()
    overlaps = runs.overlaps()
    still = [j for j in jobs if runs.running(j)]
    drill_report("MQTT broker restart (servers deaf: jobs fenced)", total_runs(runs), len(jobs), len(jobs) - len(still), len(overlaps), None)
    assert overlaps == []
    assert all(len(runs.running(j)) <= 1 for j in jobs)
