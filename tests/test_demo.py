"""``distkv-code-demo`` (``./dev.sh demo``, the README's main command):
it shows the main job (runners, failover after kill -9), then procedures;
it leaves no process behind; ``--keep`` leaves everything running, with
the status page, until it is told to stop."""

import os
import re
import signal
import subprocess
import sys

import psutil
import pytest

from tests.helpers import http, wait_until

pytestmark = pytest.mark.slow

DEMO = os.path.join(os.path.dirname(sys.executable), "distkv-code-demo")


def _leftovers(workdir):
    """Processes whose command line names the demo's directory."""
    res = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(workdir in a for a in p.info["cmdline"] or ()):
                res.append(p.info["pid"])
        except psutil.Error:
            continue
    return res


def _workdir(out):
    return re.search(r"CFG=(\S+)/node/s1\.yaml", out).group(1)


def test_demo_shows_failover_and_stops_everything():
    r = subprocess.run([DEMO], capture_output=True, timeout=120, check=False)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "$ distkv -c $CFG client run all -g demo --name r1 &" in out
    assert "$ distkv -c $CFG client run set ticker -c demo.tick -g demo -t now" in out
    victim = re.search(r"kill -9 \d+ \((r\d)\)", out).group(1)
    m = re.search(r"# (r\d) was killed; the job now runs on (r\d): moved after ([\d.]+) seconds", out)
    assert m and m.group(1) == victim and m.group(2) != victim
    assert f"runner says: taking over from {victim}" in out
    assert "serving any-node, all-node and single-node jobs" in out and "status page: http://127.0.0.1:" in out
    assert "(exit status 4)" in out and "HELLO, WORLD!" in out and out.rstrip().endswith("Done.")
    assert _leftovers(_workdir(out)) == []


def test_demo_keep_leaves_it_running_until_told(tmp_path):
    log = tmp_path / "demo.out"
    with open(log, "wb") as f:
        p = subprocess.Popen([DEMO, "--keep"], stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        out = wait_until(
            lambda: (lambda t: t if "Stop everything with Ctrl-C" in t else None)(log.read_text()),
            timeout=120,
            what="the demo to finish its steps",
        )
        url = re.search(r"the status page is (http://\S+/)", out).group(1)
        status, _, page = http(url)
        assert status == 200 and "ticker" in page
        workdir = _workdir(out)
        assert len(_leftovers(workdir)) == 4  # the server, the two runners alive, the status page
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0
        wait_until(lambda: _leftovers(workdir) == [], timeout=30, what="every process to stop")
    finally:
        if p.poll() is None:
            p.terminate()  # it stops what it started (a kill -9 would orphan them)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid in _leftovers(workdir) if "workdir" in locals() else ():
            os.kill(pid, signal.SIGKILL)
