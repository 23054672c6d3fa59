"""Process mode with real runner daemons (``distkv client run all``) on the
session's real servers: the runner's SIGTERM ends a job's child (its
``finally`` runs), ``kill -9`` of the runner takes the child with it
(``PR_SET_PDEATHSIG``), and the daemon's SIGTERM backstop kills a child
that ignores its stop."""

import pytest
from moat.util import yformat, yload

from tests.helpers import Daemon, wait_until

pytestmark = pytest.mark.slow

GROUP_ARGS = ["--timeout", "2", "--heartbeat", "0.5"]

#: writes its pid, then waits for its stop; {stubborn}: ignores it
CODE = """
import os, time
with open({pidfile!r}, "w") as f:
    f.write(str(os.getpid()))
while True:
    try:
        while True:
            time.sleep(0.05)
    except BaseException:
        with open({pidfile!r} + ".stopped", "w") as f:
            f.write("stopped")
        if not {stubborn}:
            raise
"""


def gone(pid):
    """Has process ``pid`` exited (a zombie nobody reaps counts as gone)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def start(node, tmp_path, name, *, stubborn=False, runner=None, kind=()):
    """A daemon of group ``pmd{name}`` running a process-mode job;
    (daemon, child pid, the file the child writes when it sees its stop)."""
    pidfile = tmp_path / "child.pid"
    r = node.run(
        "code", "set", f"pmd.{name}", "--process", "-s", "-", input=CODE.format(pidfile=str(pidfile), stubborn=stubborn)
    )
    assert r.returncode == 0, r.stderr
    r = node.run("run", "set", "job", "-c", f"pmd.{name}", "-g", f"pmd{name}", "-t", "now", *kind)
    assert r.returncode == 0, r.stderr
    config = node.configs[0]
    if runner:
        with open(config, encoding="utf-8") as f:
            cfg = yload(f)
        cfg.setdefault("runner", {}).update(runner)
        config = tmp_path / "runner.yaml"
        config.write_text(yformat(cfg))
    d = Daemon(str(config), "-g", f"pmd{name}", "--name", "pm1", *GROUP_ARGS, log=str(tmp_path / "d.log"))
    pid = wait_until(lambda: pidfile.exists() and pidfile.read_text(), what="the child's pid")
    return d, int(pid), tmp_path / "child.pid.stopped"


def test_the_runners_sigterm_stops_the_child_which_runs_its_finally(node, tmp_path):
    d, pid, stopped = start(node, tmp_path, "term")
    try:
        assert not gone(pid) and pid != d.proc.pid
        assert d.term(timeout=60) == 0, (tmp_path / "d.log").read_text()
    finally:
        if d.alive():
            d.kill()
    assert gone(pid)  # the daemon ended only once its child had
    assert stopped.read_text() == "stopped"


def test_kill_9_of_the_runner_takes_its_child_with_it(node, tmp_path):
    d, pid, stopped = start(node, tmp_path, "kill")
    d.kill()
    wait_until(lambda: gone(pid), timeout=30, step=0.1, what="the child's end after its runner's")
    assert stopped.read_text() == "stopped"  # PDEATHSIG: a SIGTERM, so it stopped


def test_the_sigterm_backstop_kills_a_child_that_ignores_its_stop(node, tmp_path):
    # kill_grace far beyond stop_timeout: only the backstop can end it soon
    # (an all-node job: an any-node job's grace is at most a quarter of runner.timeout)
    d, pid, stopped = start(
        node, tmp_path, "guard", stubborn=True, runner={"stop_timeout": 1, "kill_grace": 600}, kind=("--all-nodes",)
    )
    try:
        assert d.term(timeout=60) == 1  # the backstop's exit status
    finally:
        if d.alive():
            d.kill()
    assert stopped.read_text() == "stopped"  # it saw its stop, and ignored it
    wait_until(lambda: gone(pid), timeout=10, step=0.1, what="the child killed with its runner")
    assert "did not stop within runner.stop_timeout (1 s): job; exiting" in (tmp_path / "d.log").read_text()
