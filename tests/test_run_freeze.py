"""The freeze drill of issue 15, with real daemons on a real server: async
code that never awaits (``while True: pass``), as an any-node job in a
group of three runners with canary jobs.  Before the watchdog, it froze
its runner; the group took the job over, and it froze the next one.  Now:
the runner stops that code, the canaries keep running, all three runners
stay in the group, the job ends up quarantined, and ``run resume`` starts
it again."""

import json

import pytest

from tests.helpers import Daemon, running_node, wait_until

pytestmark = pytest.mark.slow

SPIN = "while True:\n    pass\nawait anyio.sleep(0)\n"
GROUP_ARGS = ["--timeout", "2", "--heartbeat", "0.5"]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with running_node(tmp_path_factory.mktemp("freeze"), n=1, timeout=120) as nd:
        r = nd.run("code", "set", "fz.spin", "--async", "-s", "-", input="import anyio\n" + SPIN)
        assert r.returncode == 0, r.stderr
        r = nd.run("code", "set", "fz.canary", "-s", "-", input="return 'tweet'\n")
        assert r.returncode == 0, r.stderr
        yield nd


def _state(node, path, *args):
    if "-g" not in args:
        args = ("-g", "fz", *args)
    r = node.run("run", "state", path, "-o", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_job_that_blocks_the_loop_is_quarantined_and_the_group_lives(node, tmp_path):
    daemons = [
        Daemon(node.configs[0], "-g", "fz", "--name", f"r{i}", *GROUP_ARGS, log=str(tmp_path / f"r{i}.log"))
        for i in (1, 2, 3)
    ]
    try:
        for i in (1, 2, 3):  # one canary per runner's share, and an all-node one
            r = node.run("run", "set", f"canary{i}", "-c", "fz.canary", "-g", "fz", "-t", "now", "-r", "1")
            assert r.returncode == 0, r.stderr
        r = node.run("run", "set", "canary", "-c", "fz.canary", "-g", "fz", "--all-nodes", "-t", "now", "-r", "1")
        assert r.returncode == 0, r.stderr
        wait_until(lambda: all(_state(node, f"canary{i}").get("runs", 0) >= 2 for i in (1, 2, 3)), what="canaries")

        r = node.run("run", "set", "spin", "-c", "fz.spin", "-g", "fz", "-t", "now", "-d", "1", "-b", "1")
        assert r.returncode == 0, r.stderr
        st = wait_until(
            lambda: (lambda s: s if s.get("quarantined") else None)(_state(node, "spin")),
            timeout=120,
            what="the spinning job quarantined",
        )
        assert st["runs"] == 3 and st["node"] is None and len(st["stalls"]) == 3, st
        assert st["error"] == "stalled the runner: its code kept the event loop busy (runner.stall_limit)"
        why = node.run("run", "why", "spin", "-g", "fz").out
        assert f"quarantined: {st['quarantined']}; `run resume` to try again" in why, why

        # the group lived through it: every runner is up and a member, the canaries ran on
        assert all(d.alive() for d in daemons)
        before = [_state(node, f"canary{i}")["runs"] for i in (1, 2, 3)]
        wait_until(
            lambda: all(_state(node, f"canary{i}")["runs"] >= n + 2 for i, n in zip((1, 2, 3), before, strict=True)),
            what="canaries running on",
        )
        r = node.run("run", "list", "-g", "fz", "-o", "json")
        rows = {x["path"]: x for x in json.loads(r.stdout)}
        assert rows["spin"]["state"] == "quarantined" and not any(x["runner_gone"] for x in rows.values()), rows
        members = node.run("run", "state", "canary", "-g", "fz", "--all-nodes", "-o", "json")
        assert sorted(json.loads(members.stdout)) == ["r1", "r2", "r3"]

        # run resume: it starts at once (and stalls again: one stall, no quarantine yet)
        r = node.run("run", "resume", "spin", "-g", "fz")
        assert (r.returncode, r.out, r.err) == (0, "resumed: spin\n", "")
        wait_until(lambda: _state(node, "spin")["runs"] == 4, what="a start after run resume")
        r = node.run("run", "resume", "canary1", "-g", "fz")
        assert (r.returncode, r.out) == (0, "not paused or quarantined: canary1\n")
        r = node.run("run", "resume", "no.such", "-g", "fz")
        assert (r.returncode, r.err) == (3, "Error: no job stored at no.such\n")
        assert all(d.alive() for d in daemons)
    finally:
        for d in daemons:
            d.kill()


def test_run_list_shows_no_old_error_beside_a_job_that_runs_again(node, tmp_path):
    code = (
        "import anyio\nif _entry.state.runs == 1:\n    raise RuntimeError('first run')\nawait anyio.sleep_forever()\n"
    )
    r = node.run("code", "set", "fz.flaky", "--async", "-s", "-", input=code)
    assert r.returncode == 0, r.stderr
    d = Daemon(node.configs[0], "-g", "fl", "--name", "f1", *GROUP_ARGS, log=str(tmp_path / "f1.log"))
    try:
        r = node.run("run", "set", "flaky", "-c", "fz.flaky", "-g", "fl", "-t", "now", "-d", "1", "-b", "1")
        assert r.returncode == 0, r.stderr

        def row():
            out = node.run("run", "list", "-g", "fl", "-o", "json").stdout
            return {x["path"]: x for x in json.loads(out)}["flaky"]

        wait_until(lambda: row()["state"] == "running" and _state(node, "flaky", "-g", "fl")["runs"] == 2)
        assert row()["error"] is None  # the error was the first run's; the second runs
        assert "last error (1 in a row): RuntimeError: first run" in node.run("run", "why", "flaky", "-g", "fl").out
    finally:
        d.kill()


def test_code_that_swallows_its_stall_ends_the_daemon(node, tmp_path):
    """Job code that catches LoopStalled and goes on blocking the loop cannot
    be stopped: the daemon exits (status 1) rather than keep a job that the
    group takes over."""
    code = "import anyio\nwhile True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\nawait anyio.sleep(0)\n"
    r = node.run("code", "set", "fz.swallow", "--async", "-s", "-", input=code)
    assert r.returncode == 0, r.stderr
    log = tmp_path / "s1.log"
    d = Daemon(node.configs[0], "-g", "sw", "--name", "s1", *GROUP_ARGS, log=str(log))
    try:
        r = node.run("run", "set", "swallow", "-c", "fz.swallow", "-g", "sw", "-t", "now")
        assert r.returncode == 0, r.stderr
        assert d.proc.wait(60) == 1
        text = log.read_text()
        assert "job code kept the event loop busy for" in text and "(<distkv:proc fz.swallow>): exiting" in text, text
    finally:
        if d.alive():
            d.kill()
