"""What 'run why' and 'run list' say is tied to live runners (real
daemons on a real server): after kill -9 of the only runner of a group,
its any-node, all-node and single-node jobs no longer show as running,
and a single-node job of a node without a runner says so."""

import json
import time

import pytest

from tests.helpers import Daemon, query, running_node, wait_until

pytestmark = pytest.mark.slow

FOREVER = "import anyio\nawait anyio.sleep_forever()\n"
GROUP_ARGS = ["--timeout", "2", "--heartbeat", "0.5"]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with running_node(tmp_path_factory.mktemp("truth"), n=1, timeout=120) as nd:
        r = nd.run("code", "set", "tr.forever", "--async", "-s", "-", input=FOREVER)
        assert r.returncode == 0, r.stderr
        yield nd


def _set(node, *args):
    r = node.run("run", "set", *args, "-c", "tr.forever", "-t", "now")
    assert r.returncode == 0, r.stderr


def _list(node, *args):
    r = node.run("run", "list", "-g", "tg", "-o", "json", *args)
    assert r.returncode == 0, r.stderr
    return {(x["kind"], x["path"]): x for x in json.loads(r.stdout)}


def _why(node, *args):
    r = node.run("run", "why", *args)
    assert r.returncode == 0, r.stderr
    return r.out


def test_a_dead_runner_s_jobs_do_not_show_as_running(node, tmp_path):
    d = Daemon(node.configs[0], "-g", "tg", "--name", "r1", *GROUP_ARGS, log=str(tmp_path / "r1.log"))
    try:
        _set(node, "ta", "-g", "tg")
        _set(node, "tl", "-g", "tg", "--all-nodes")
        _set(node, "ts", "-g", "tg", "-n", "r1")
        _set(node, "tz", "-g", "tg", "-n", "nobody")
        jobs = [("any", "ta"), ("all", "tl"), ("single", "ts")]
        listed = wait_until(
            lambda: (lambda ls: ls if all(ls[j]["running_on"] == ["r1"] for j in jobs) else None)(_list(node)),
            what="the jobs running on r1",
        )
        assert [(listed[j]["state"], listed[j]["runner_gone"]) for j in jobs] == [
            ("running", []),
            ("r1:running", []),
            ("running", []),
        ]
        # a single-node job whose node has no runner
        assert "due now (target); no runner for node nobody is running (not heard in its group for 2 s)" in _why(
            node, "tz", "-g", "tg", "-n", "nobody"
        )
        assert "running on r1 since" in _why(node, "ta", "-g", "tg")
    finally:
        d.kill()
    # the store still says r1 runs them; the group says r1 is gone
    listed = _list(node)
    for j in jobs:
        assert listed[j]["running_on"] == ["r1"] and listed[j]["runner_gone"] == ["r1"], listed[j]
    assert listed[("any", "ta")]["state"] == "runner gone"
    assert listed[("all", "tl")]["state"] == "r1:runner gone"
    gone = "was running on r1 (started {} ago); that runner is gone (not heard in its group for 2 s)"
    out = _why(node, "ta", "-g", "tg")
    assert gone.format(out.split("(started ")[1].split(" ago")[0]) + ", and no runner of the group is running" in out
    for args in (("tl", "-g", "tg", "--all-nodes"), ("ts", "-g", "tg", "-n", "r1")):
        out = _why(node, *args)
        assert "that runner is gone (not heard in its group for 2 s): the job runs again when it is back" in out
    # --no-listen: the stored state only, at once
    assert "running on r1 since" in _why(node, "ta", "-g", "tg", "--no-listen")
    assert _list(node, "--no-listen")[("any", "ta")]["runner_gone"] == []
    r = node.run("run", "why", "ta", "-g", "tg", "-o", "json")
    res = json.loads(r.stdout)
    assert (res["status"], res["runner_gone"]) == ("runner gone", True)


def _error_paths(node):
    from moat.util import P

    async def get(c):
        return sorted([tuple(str(x) for x in r.path) async for r in c.get_tree(P(":.distkv.error"))])

    return query(node.configs[0], get)


def test_restarts_add_no_error_records(node, tmp_path):
    """A daemon names its error records by host, node and group, not by
    PID: restarting it while a job keeps failing adds no entries."""
    r = node.run("code", "set", "tr.fails", "-s", "-", input="raise RuntimeError('always')\n")
    assert r.returncode == 0, r.stderr
    r = node.run(
        "run", "set", "tf", "-c", "tr.fails", "-g", "tr2", "-t", "now", "-r", "1", "-b", "1", "--max-delay", "1"
    )
    assert r.returncode == 0, r.stderr
    counts = []
    for i in range(4):
        d = Daemon(node.configs[0], "-g", "tr2", "--name", "rr", *GROUP_ARGS, log=str(tmp_path / f"rr{i}.log"))
        try:
            wait_until(
                lambda: "RuntimeError: always" in node.run("run", "why", "tf", "-g", "tr2", "--no-listen").out,
                what="the job's error",
            )
            runs = json.loads(node.run("run", "state", "tf", "-g", "tr2", "-o", "json").out)["runs"]
            wait_until(
                lambda r0=runs: (
                    json.loads(node.run("run", "state", "tf", "-g", "tr2", "-o", "json").out)["runs"] >= r0 + 2
                ),
                what="two more failed runs",
            )
        finally:
            assert d.term() == 0
        counts.append(len(_error_paths(node)))
    assert counts[1:] == counts[:1] * 3, counts


#: code that swallows its stop (JobStopped) for ever
SWALLOWS = "import time\nwhile True:\n    try:\n        while True:\n            time.sleep(0.05)\n    except BaseException:\n        pass\n"


@pytest.mark.parametrize(
    ("mode", "code", "rc"),
    [
        ("--thread", "import time\nwhile True:\n    time.sleep(0.05)\n", 0),
        ("--thread", SWALLOWS, 1),
        ("--async", "while True:\n    pass\n", 0),
    ],
    ids=["thread, stopped", "thread that swallows its stop", "async, the loop blocked: the watchdog stops it"],
)
def test_sigterm_ends_the_daemon_whatever_its_jobs_do(node, tmp_path, mode, code, rc):
    """A thread job that swallows its stop: SIGTERM still ends the daemon,
    after runner.stop_timeout, saying which jobs did not stop (it hung for
    good).  Async code that keeps the event loop busy is stopped by the
    watchdog (`_loopwatch`), so the daemon stops cleanly (it hung too)."""
    from moat.util import yformat, yload

    with open(node.configs[0], encoding="utf-8") as f:
        cfg = yload(f)
    cfg.setdefault("runner", {})["stop_timeout"] = 1
    config = tmp_path / "stubborn.yaml"
    config.write_text(yformat(cfg))
    name = f"{mode.strip('-')}{rc}"
    r = node.run("code", "set", f"tr.stubborn.{name}", mode, "-s", "-", input=code)
    assert r.returncode == 0, r.stderr
    r = node.run("run", "set", "stub", "-c", f"tr.stubborn.{name}", "-g", f"tr3{name}", "-t", "now")
    assert r.returncode == 0, r.stderr
    log = tmp_path / "stub.log"
    d = Daemon(str(config), "-g", f"tr3{name}", "--name", "rs", *GROUP_ARGS, log=str(log))
    try:
        wait_until(
            lambda: _list_group(node, f"tr3{name}")[("any", "stub")]["running_on"] == ["rs"], what="the job running"
        )
        exit_status = d.term(timeout=60)  # not timed: it must end at all (it hung for good)
    finally:
        if d.alive():
            d.kill()
    assert exit_status == rc, log.read_text()
    assert ("did not stop within runner.stop_timeout (1 s): stub; exiting" in log.read_text()) is (rc == 1)
    assert ("kept the event loop busy" in log.read_text()) is (mode == "--async")


def _list_group(node, group):
    r = node.run("run", "list", "-g", group, "-o", "json", "--no-listen")
    assert r.returncode == 0, r.stderr
    return {(x["kind"], x["path"]): x for x in json.loads(r.stdout)}


def test_a_busy_sync_job_freezes_nothing_and_stops_when_deleted(node, tmp_path):
    """``while True: pass`` as sync code (DistKV's default mode) in a group
    of two: the runner that has it goes on (heartbeats, a canary job), so
    the job is not passed from runner to runner; ``run delete`` stops it
    (its ``finally`` runs).  It froze every runner of the group in turn."""
    marker = tmp_path / "stopped"
    busy = f"try:\n    while True:\n        pass\nfinally:\n    open({str(marker)!r}, 'w').write('stopped')\n"
    r = node.run("code", "set", "tr.busy", "--sync", "-s", "-", input=busy)
    assert r.returncode == 0, r.stderr
    ds = [
        Daemon(node.configs[0], "-g", "frz", "--name", n, *GROUP_ARGS, log=str(tmp_path / f"{n}.log"))
        for n in ("f1", "f2")
    ]
    try:
        _set(node, "canary", "-g", "frz")
        r = node.run("run", "set", "busy", "-c", "tr.busy", "-g", "frz", "-t", "now")
        assert r.returncode == 0, r.stderr
        jobs = wait_until(
            lambda: (lambda ls: ls if all(ls[("any", j)]["running_on"] for j in ("busy", "canary")) else None)(
                _list_group(node, "frz")
            ),
            what="both jobs running",
        )
        holder = jobs[("any", "busy")]["running_on"]
        time.sleep(8)  # 4 group timeouts: a frozen runner would have lost the job by now
        state = json.loads(node.run("run", "state", "busy", "-g", "frz", "-o", "json").out)
        assert (state["node"], state["runs"]) == (holder[0], 1), state
        listed = _list_group(node, "frz")
        assert listed[("any", "canary")]["state"] == "running"
        assert all(d.alive() for d in ds)
        r = node.run("run", "delete", "busy", "-g", "frz")
        assert r.returncode == 0, r.stderr
        wait_until(marker.exists, what="the busy loop's finally")
        assert all(d.alive() for d in ds)
    finally:
        for d in ds:
            d.term()
