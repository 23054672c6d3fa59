"""DistKV 0.65's own runner ignores what this project adds to a runner
entry (calendars, placement, limits, positional arguments) and keeps
running: a mixed fleet, or a fallback to DistKV's runner, loses nothing.

DistKV's any-node runner runs in a real process (bench/distkv_runner.py,
through its Python API) against the session's real servers.
"""

import os
import subprocess
import sys
import time

import pytest
from moat.util import P

from tests.helpers import query, wait_until

pytestmark = pytest.mark.usefixtures("node")

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, os.pardir, "bench", "distkv_runner.py")


def _state(node, job):
    async def get(c):
        # DistKV 0.65 keeps its states one level deeper than its docs say
        r = await c.get(P(f":.distkv.state.state.any.dkfields.{job}"))
        return r.get("value")

    return query(node.configs[0], get)


def test_distkvs_runner_ignores_our_fields(node, tmp_path):
    node.run("code", "set", "dkf.count", "--var", "a", "--var", "b", "-s", "-", input="return 7")
    G = ("-g", "dkfields")
    # every new field at once, on a job that DistKV's runner can run ...
    r = node.run(
        "run", "set", "plain", "-c", "dkf.count", *G, "-t", "now", "-e", "a", "1", "-e", "b", "2", "--require-tag", "relay",
        "--prefer-tag", "room=x", "--limit", "bus=1", "-a", "1", "-a", "[2]", "--literal",
    )  # fmt: skip
    assert r.returncode == 0, r.err
    # ... and calendar jobs, which have no target: DistKV's runner leaves them
    for name, extra in (
        ("cal", ["--cron", "* * * * * */2", "--tz", "Europe/Berlin", "--jitter", "1s", "--overlap", "cancel"]),
        ("sun", ["--at", "sunset-15m", "--location", "52.5,13.4", "--tz", "UTC", "--catch-up", "none"]),
    ):
        r = node.run("run", "set", name, "-c", "dkf.count", *G, "-e", "a", "1", "-e", "b", "2", *extra)
        assert r.returncode == 0, r.err
    log = tmp_path / "dk.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, RUNNER, node.configs[0], "dkfields", "dk1"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: (_state(node, "plain") or {}).get("result") is not None, timeout=120, step=0.5,
                   what="DistKV's runner ran the job")  # fmt: skip
        assert _state(node, "plain")["result"] == 7
        time.sleep(3)  # the calendar jobs' slots (every 2 s) pass: DistKV's runner must not start them
        for job in ("cal", "sun"):  # DistKV's runner notes "no target" and starts nothing
            st = _state(node, job) or {}
            assert not st.get("started") and st.get("reason", "no target") == "no target", st
        assert proc.poll() is None, log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Traceback" not in log.read_text(), log.read_text()
