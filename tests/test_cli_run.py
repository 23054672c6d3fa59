"""``distkv client run`` entry commands through the real ``distkv`` command."""

import json

import pytest

pytestmark = pytest.mark.usefixtures("node")


@pytest.fixture(scope="module", autouse=True)
def procs(node):
    node.run("code", "set", "cr.add", "--var", "a", "-e", "b", "2", "-s", "-", input="return a + b")


def test_set_get_update_delete(node):
    r = node.run(
        "run", "set", "jobs.one", "-c", "cr.add", "-g", "cg", "-e", "a", "40", "-t", "never", "-r", "60", "-i", "adds"
    )
    assert (r.returncode, r.out, r.err) == (0, "created: jobs.one\n", "")
    r = node.run("run", "get", "jobs.one", "-g", "cg", "-o", "json")
    got = json.loads(r.out)
    assert got == {
        "code": "cr.add",
        "data": {"a": 40},
        "target": 0,
        "repeat": 60,
        "delay": 10,
        "backoff": 2,
        "max_delay": 600,
        "info": "adds",
    }
    r = node.run("run", "set", "jobs.one", "-g", "cg", "-d", "5")
    assert r.out == "updated: jobs.one\n"
    r = node.run("run", "set", "jobs.one", "-g", "cg", "-d", "5")
    assert r.out == "unchanged: jobs.one\n"
    r = node.run("run", "list", "-g", "cg", "-o", "json")
    rows = json.loads(r.out)
    assert [(x["path"], x["kind"], x["code"], x["state"]) for x in rows] == [("jobs.one", "any", "cr.add", "never ran")]
    r = node.run("run", "why", "jobs.one", "-g", "cg")
    assert r.out == (
        "job jobs.one (any-node, group cg) runs cr.add\n"
        "  group: no runner of the group is running\n"
        "  not scheduled: no target\n"
    )
    r = node.run("run", "delete", "jobs.one", "-g", "cg")
    assert r.out == "deleted: jobs.one\n"
    r = node.run("run", "get", "jobs.one", "-g", "cg")
    assert (r.returncode, r.err) == (3, "Error: no job stored at jobs.one\n")


def test_refusals(node):
    r = node.run("run", "set", "jobs.two", "-c", "cr.add", "-g", "cg")
    assert (r.returncode, r.err) == (4, "Error: procedure cr.add needs a: give them with -v/-e/-p\n")
    r = node.run("run", "set", "jobs.two", "-c", "no.such", "-g", "cg", "-v", "a", "1")
    assert (r.returncode, r.err) == (3, "Error: no procedure stored at no.such\n")
    r = node.run("run", "set", "jobs.two", "-g", "cg")
    assert r.returncode == 2 and r.err.endswith("Error: jobs.two is new: give its procedure with -c CODE\n")
    r = node.run("run", "set", "jobs.two", "-c", "cr.add", "-g", "cg", "-e", "a", "1", "-b", "0.5")
    assert r.returncode == 2  # an option out of range: a usage error naming the option
    assert r.err.endswith("Error: Invalid value for '-b' / '--backoff': must be at least 1, not 0.5\n")
    r = node.run("run", "set", "jobs.two", "-c", "cr.add", "-g", "cg", "-e", "a", "1", "-t", "tomorrowish")
    assert r.returncode == 2 and "use now, never, seconds from now, or an ISO time" in r.err
    r = node.run("run", "set", "jobs.two", "-c", "cr.add", "-g", "cg", "-e", "a", "1", "-n", "x", "--all-nodes")
    assert r.returncode == 2 and "give either -n NODE or --all-nodes, not both" in r.err
    assert node.run("run", "get", "jobs.two", "-g", "cg").returncode == 3


def test_kinds_are_separate(node):
    node.run("run", "set", "k.a", "-c", "cr.add", "-g", "kg", "-e", "a", "1")
    node.run("run", "set", "k.b", "-c", "cr.add", "-g", "kg", "--all-nodes", "-e", "a", "1")
    node.run("run", "set", "k.c", "-c", "cr.add", "-g", "kg", "-n", "box", "-e", "a", "1")
    r = node.run("run", "list", "-g", "kg", "-o", "json")
    assert sorted((x["path"], x["kind"], x["node"]) for x in json.loads(r.out)) == [
        ("k.a", "any", None),
        ("k.b", "all", None),
        ("k.c", "single", "box"),
    ]
    assert node.run("run", "get", "k.c", "-g", "kg").returncode == 3  # not an any-node job
    assert node.run("run", "get", "k.c", "-g", "kg", "-n", "box").returncode == 0


def test_pin(node):
    r = node.run("run", "set", "p.one", "-c", "cr.add", "-g", "pg", "-e", "a", "1", "--pin")
    assert r.returncode == 0
    pin = json.loads(node.run("run", "get", "p.one", "-g", "pg", "-o", "json").out)["pin"]
    assert len(pin) == 64  # SHA-256 of the procedure and the modules it needs
    node.run("run", "set", "p.one", "-g", "pg", "--no-pin")
    assert "pin" not in json.loads(node.run("run", "get", "p.one", "-g", "pg", "-o", "json").out)


def test_interrupt_is_exit_130(node):
    import signal
    import subprocess
    import time

    node.run("run", "set", "int.job", "-c", "cr.add", "-g", "ig", "-e", "a", "1")
    p = node.popen(
        "run",
        "logs",
        "int.job",
        "-g",
        "ig",
        "-f",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # as at a terminal: a shell without job control starts background
        # commands (a CI runner, ``cmd &``) with SIGINT ignored, and that
        # is inherited; the command would never see this Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    _, err_ = p.communicate(timeout=30)
    assert (p.returncode, err_.decode()) == (130, "Error: interrupted\n")
