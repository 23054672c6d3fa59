"""Runner daemons as real processes on three real DistKV servers.

kill -9 of the daemon running an any-node job; all-node and single-node
jobs; a code change restarts jobs; no two runs of a job overlap; SIGTERM
and systemd's notifications.

The tests share the servers (`node3`) but not their data: each has its own
group and job names, and the one that kills a server has servers of its own.
"""

import os
import socket
import time

import pytest

from tests.helpers import Daemon, assert_no_overlap, query, running_node, wait_until

pytestmark = pytest.mark.slow

GROUP_ARGS = ["--timeout", "2", "--heartbeat", "0.5"]

#: an async job that records its run (start; stop when it ends) in the store
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


def runs(config, jobs=None, prefix=("test", "runs")):
    """The run records (of ``jobs`` only, if given): list of dicts (job,
    node, start, stop, v).  The servers are shared: other tests' runs are
    there too."""
    from moat.util import Path

    async def get(c):
        res = []
        try:
            async for r in c.get_tree(Path.build(prefix)):
                v = r.get("value")
                if isinstance(v, dict) and "start" in v and (jobs is None or str(r.path[0]) in jobs):
                    res.append(dict(v, job=str(r.path[0])))
        except Exception:  # nothing recorded yet
            pass
        return res

    return query(config, get)


@pytest.fixture(scope="module")
def node3(tmp_path_factory):
    with running_node(tmp_path_factory.mktemp("node3"), n=3, timeout=120) as nd:
        nd.run("code", "set", "rec.loop", "--async", "--var", "name", "-s", "-", input=RECORDER.replace("VERSION", "1"))
        yield nd


@pytest.fixture
def daemons(tmp_path):
    """``daemons(CONFIG, ARGS...)`` starts ``distkv -c CONFIG client run all
    ARGS``; each is killed when the test ends."""
    started = []

    def start(config, *args, env=None):
        d = Daemon(config, *args, env=env, log=str(tmp_path / f"daemon{len(started)}.log"))
        started.append(d)
        return d

    yield start
    for d in started:
        if d.alive():
            d.kill()


def running(recs, job):
    return [r for r in recs if r["job"] == job and "stop" not in r]


def test_kill9_any_node_job_resumes_elsewhere_without_overlap(node3, daemons):
    ds = {f"r{i + 1}": daemons(node3.configs[i], "-g", "fo", "--name", f"r{i + 1}", *GROUP_ARGS) for i in range(3)}
    jobs = [f"fo{i}" for i in range(6)]
    for j in jobs:
        r = node3.run("run", "set", j, "-c", "rec.loop", "-g", "fo", "-t", "now", "-v", "name", j)
        assert r.returncode == 0, r.stderr
    cfg = node3.configs[0]
    recs = wait_until(
        lambda: (lambda rs: rs if all(len(running(rs, j)) == 1 for j in jobs) else None)(runs(cfg, jobs)),
        what="all jobs running",
    )
    victim = running(recs, "fo0")[0]["node"]
    assert len({r["node"] for r in recs}) >= 2, "jobs are spread over the nodes"
    lost = [j for j in jobs if running(recs, j)[0]["node"] == victim]
    ds[victim].kill()
    killed_at = time.time()

    def resumed():
        rs = runs(cfg, jobs)
        ok = all(any(r["node"] != victim and r["start"] > killed_at for r in running(rs, j)) for j in lost)
        return rs if ok else None

    recs = wait_until(resumed, timeout=60, what="the killed node's jobs to resume elsewhere")
    for j in jobs:  # nothing lost, nothing doubled
        live = [r for r in running(recs, j) if r["node"] != victim]
        assert len(live) == 1, (j, live)
    assert_no_overlap(recs, ended={victim: killed_at})
    r = node3.run("run", "list", "-g", "fo", "-o", "json")
    import json

    listed = {x["path"]: x for x in json.loads(r.stdout)}
    assert all(listed[j]["running_on"] and listed[j]["running_on"] != [victim] for j in jobs)


def test_all_node_job_runs_on_all_three(node3, daemons):
    for i in range(3):
        daemons(node3.configs[i], "-g", "al", "--all-nodes", "--name", f"a{i + 1}", *GROUP_ARGS)
    r = node3.run(
        "run", "set", "everywhere", "-c", "rec.loop", "-g", "al", "--all-nodes", "-t", "now", "-v", "name", "everywhere"
    )
    assert r.returncode == 0, r.stderr
    recs = wait_until(
        lambda: (lambda rs: rs if len({r["node"] for r in running(rs, "everywhere")}) == 3 else None)(
            runs(node3.configs[1])
        ),
        what="the job on all nodes",
    )
    assert sorted(r["node"] for r in running(recs, "everywhere")) == ["a1", "a2", "a3"]
    r = node3.run("run", "state", "everywhere", "-g", "al", "--all-nodes", "-o", "json")
    import json

    assert sorted(json.loads(r.stdout)) == ["a1", "a2", "a3"]


def test_single_node_job_runs_only_on_its_node(node3, daemons):
    daemons(node3.configs[0], "-g", "hw", "-n", "s1node")
    daemons(node3.configs[1], "-g", "hw", "-n", "s2node")
    for n in ("s2node", "nobody"):
        r = node3.run(
            "run", "set", f"dev.{n}", "-c", "rec.loop", "-g", "hw", "-n", n, "-t", "now", "-v", "name", f"single-{n}"
        )
        assert r.returncode == 0, r.stderr
    wait_until(lambda: running(runs(node3.configs[0]), "single-s2node"), what="the single-node job")
    time.sleep(3)
    recs = runs(node3.configs[0])
    assert {r["node"] for r in recs if r["job"] == "single-s2node"} == {"s2node"}
    assert not [r for r in recs if r["job"] == "single-nobody"]
    r = node3.run("run", "why", "dev.nobody", "-g", "hw", "-n", "nobody")
    assert "due now" in r.out


def test_code_change_restarts_running_jobs(node3, daemons):
    for i in range(2):
        daemons(node3.configs[i], "-g", "cc", "--name", f"c{i + 1}", *GROUP_ARGS)
    node3.run("code", "set", "rec.cc", "--async", "--var", "name", "-s", "-", input=RECORDER.replace("VERSION", "1"))
    node3.run("run", "set", "ccjob", "-c", "rec.cc", "-g", "cc", "-t", "now", "-v", "name", "ccjob")
    wait_until(lambda: running(runs(node3.configs[0]), "ccjob"), what="the job")
    node3.run("code", "set", "rec.cc", "-s", "-", input=RECORDER.replace("VERSION", "2"))
    recs = wait_until(
        lambda: (lambda rs: rs if [r for r in running(rs, "ccjob") if r["v"] == 2] else None)(runs(node3.configs[0])),
        what="the restart with the new code",
    )
    assert all("stop" in r for r in recs if r["job"] == "ccjob" and r["v"] == 1)
    assert_no_overlap([r for r in recs if r["job"] == "ccjob"])


def test_sigterm_hands_over_and_notifies_systemd(node3, daemons, tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(60)
    try:
        d1 = daemons(
            node3.configs[0],
            "-g",
            "st",
            "--name",
            "t1",
            *GROUP_ARGS,
            env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"},
        )
        msgs = []
        while not any(m.startswith("READY=1") for m in msgs):
            msgs.append(sock.recv(4096).decode())
        assert any("STATUS=running: any-node, all-node and single-node runner of group st as t1" in m for m in msgs)
        msgs.append(sock.recv(4096).decode())
        assert any("WATCHDOG=1" in m for m in msgs)
        node3.run("run", "set", "stjob", "-c", "rec.loop", "-g", "st", "-t", "now", "-v", "name", "stjob")
        wait_until(lambda: running(runs(node3.configs[0]), "stjob"), what="the job")
        daemons(node3.configs[1], "-g", "st", "--name", "t2", *GROUP_ARGS)
        time.sleep(3)  # t2 has heard the group
        assert d1.term() == 0
        while not any(m.startswith("STOPPING=1") for m in msgs):
            msgs.append(sock.recv(4096).decode())
        recs = wait_until(
            lambda: (lambda rs: rs if [r for r in running(rs, "stjob") if r["node"] == "t2"] else None)(
                runs(node3.configs[0])
            ),
            timeout=30,
            what="t2 to take over",
        )
        assert [r for r in recs if r["job"] == "stjob" and r["node"] == "t1" and "stop" in r]
        assert_no_overlap([r for r in recs if r["job"] == "stjob"])
    finally:
        sock.close()


def test_daemon_exits_5_when_its_server_dies(daemons, tmp_path):
    """It kills its server: a node of its own, not the module's `node3`."""
    import signal
    import subprocess

    with running_node(tmp_path / "own", n=1) as own:
        config = own.configs[0]
        d = daemons(config, "-g", "lost", "--name", "l3", *GROUP_ARGS)
        single = daemons(config, "-g", "lost", "-n", "l3n")  # no group channel: watches its connection itself
        time.sleep(4)
        assert d.alive() and single.alive()
        pids = subprocess.run(["pgrep", "-f", f"{config} server"], capture_output=True, check=False).stdout.split()
        assert pids
        for p in pids:
            os.kill(int(p), signal.SIGKILL)
        assert d.proc.wait(30) == 5
        assert single.proc.wait(30) == 5
        with open(d.log, encoding="utf-8", errors="replace") as f:
            assert "Error: lost the connection to the DistKV server" in f.read()
