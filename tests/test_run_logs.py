"""Job output through the real CLI: ``run logs`` (and ``-f``), ``why``, ``state``."""

import json
import queue
import re
import subprocess
import threading
import time

import pytest

from tests.helpers import Daemon, wait_until

pytestmark = pytest.mark.slow  # runner daemons: real processes

TICKER = """
import anyio, sys
for i in range(1000):
    print("tick", i)
    if i == 2:
        print("warning: low water", file=sys.stderr)
    await anyio.sleep(0.3)
"""


def test_logs_follow_why_state(node, tmp_path):
    node.run("code", "set", "out.tick", "--async", "-s", "-", input=TICKER)
    d = Daemon(node.configs[0], "-g", "lg", "--name", "w1", "--timeout", "2", log=str(tmp_path / "d.log"))
    try:
        r = node.run("run", "set", "ticker", "-c", "out.tick", "-g", "lg", "-t", "now")
        assert r.returncode == 0, r.stderr

        def has_ticks():
            r = node.run("run", "logs", "ticker", "-g", "lg")
            return r.out if "tick 3" in r.out else None

        text = wait_until(has_ticks, timeout=60, what="output")
        assert text.startswith("tick 0\ntick 1\ntick 2\n! warning: low water\ntick 3\n")
        r = node.run("run", "logs", "ticker", "-g", "lg", "-o", "json")
        (run,) = json.loads(r.stdout)
        assert run["node"] == "w1" and run["run"] == 1 and run["lines"][0][1:] == ["stdout", "tick 0"]
        r = node.run("run", "why", "ticker", "-g", "lg")
        assert "running on w1" in r.out and "  last output:\n" in r.out and "\n    tick " in r.out
        r = node.run("run", "list", "-g", "lg", "-o", "json")
        assert json.loads(r.stdout)[0]["last_output"].startswith("tick")
        r = node.run("run", "state", "ticker", "-g", "lg", "-o", "json")
        assert json.loads(r.stdout)["last_output"][-1].startswith("tick")
        # follow: new lines arrive while we watch
        f = node.popen(
            "run", "logs", "ticker", "-g", "lg", "-f", server=1, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x.decode()) for x in f.stdout], daemon=True)
        reader.start()
        try:
            seen = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    line = lines.get(timeout=1)
                except queue.Empty:
                    continue
                seen.append(line)
                if line.startswith("[w1 #1] tick") and int(line.split()[-1]) >= 12:
                    break
            assert seen[0] == "[w1 #1] tick 0\n"
            ticks = [int(x.split()[-1]) for x in seen if " tick " in x]
            assert ticks == list(range(ticks[0], ticks[-1] + 1)) and ticks[-1] >= 12, seen
        finally:
            f.kill()
            f.wait()
            reader.join(10)  # it ends at EOF; only then close what it reads
            f.stdout.close()
            f.stderr.close()
    finally:
        d.kill()


def test_two_runners_with_one_name_the_younger_stops(node, tmp_path):
    a = Daemon(node.configs[0], "-g", "dupg", "--name", "dup", log=str(tmp_path / "a.log"))
    try:
        time.sleep(3)
        b = Daemon(node.configs[1], "-g", "dupg", "--name", "dup", log=str(tmp_path / "b.log"))
        status = b.proc.wait(30)
        with open(tmp_path / "b.log", encoding="utf-8") as f:
            log = f.read()
        assert status == 2, log
        # whichever of its groups (any-node, all-node, single-node) noticed first
        assert re.search(
            r"\nError: another runner of group (any|all|at\.dup)\.dupg is called dup \(host \S+, pid "
            + str(a.proc.pid)
            + r", running since [-0-9]+ [:0-9]+\): give each runner its own --name",
            log,
        ), log
        assert a.alive()
    finally:
        a.kill()
