"""``run pause|resume|trigger`` and ``code call PATH ARG...`` through the real
``distkv`` command: outputs, exact error messages and exit statuses."""

import json

import pytest
from moat.util import P

from tests.helpers import query

pytestmark = pytest.mark.usefixtures("node")


@pytest.fixture(scope="module", autouse=True)
def procs(node):
    node.run("code", "set", "cp.add", "--var", "a", "--var", "b", "-s", "-", input="return a + b")
    node.run("code", "set", "cp.one", "-s", "-", input="return 1")
    for job in ("p.one", "p.two"):
        r = node.run("run", "set", job, "-c", "cp.one", "-g", "cp", "-t", "never")
        assert r.returncode == 0, r.err


def test_pause_why_list_resume(node):
    r = node.run("run", "pause", "p.one", "-g", "cp", "-m", "new pump")
    assert (r.returncode, r.out, r.err) == (0, "paused: p.one\n", "")
    r = node.run("run", "pause", "p.one", "-g", "cp")
    assert (r.returncode, r.out) == (0, "already paused: p.one\n")
    r = node.run("run", "why", "p.one", "-g", "cp", "--no-listen")
    lines = r.out.splitlines()
    assert lines[-1].startswith("  paused by ") and lines[-1].endswith(" (new pump); `run resume` to go on")
    rows = {x["path"]: x for x in json.loads(node.run("run", "list", "-g", "cp", "--no-listen", "-o", "json").out)}
    assert (rows["p.one"]["state"], rows["p.two"]["state"]) == ("paused", "never ran")
    assert rows["p.one"]["paused"].startswith("paused by ") and rows["p.two"]["paused"] is None
    r = node.run("run", "resume", "p.one", "-g", "cp")
    assert (r.returncode, r.out, r.err) == (0, "resumed: p.one\n", "")
    r = node.run("run", "resume", "p.one", "-g", "cp", "-o", "json")
    assert (r.returncode, json.loads(r.out)) == (0, {"path": "p.one", "action": "not paused or quarantined"})


def test_group_pause_and_resume(node):
    r = node.run("run", "pause", "-g", "cp", "--all")
    assert (r.returncode, r.out) == (0, "paused: group cp (any-node jobs)\n")
    r = node.run("run", "resume", "p.two", "-g", "cp")
    assert (r.returncode, r.out) == (0, "not paused or quarantined: p.two\n")
    assert r.err == "note: p.two stays paused: its group is paused; 'run resume -g cp --all' lifts that\n"
    r = node.run("run", "resume", "-g", "cp", "--all")
    assert (r.returncode, r.out) == (0, "resumed: group cp (any-node jobs)\n")
    r = node.run("run", "resume", "-g", "cp", "--all")
    assert (r.returncode, r.out) == (0, "not paused: group cp (any-node jobs)\n")


def test_trigger_writes_the_state_not_the_job(node):
    before = node.run("run", "get", "p.two", "-g", "cp", "-o", "json").out
    r = node.run("run", "trigger", "p.two", "-g", "cp")
    assert (r.returncode, r.out, r.err) == (0, "triggered: p.two\n", "")
    assert node.run("run", "get", "p.two", "-g", "cp", "-o", "json").out == before
    st = json.loads(node.run("run", "state", "p.two", "-g", "cp", "-o", "json").out)
    assert st["resume"] is True and st["triggered"].startswith("by ")
    r = node.run("run", "why", "p.two", "-g", "cp", "--no-listen")
    assert "  due now (triggered by " in r.out


def test_errors(node):
    for cmd in ("pause", "resume", "trigger"):
        r = node.run("run", cmd, "no.such", "-g", "cp")
        assert (r.returncode, r.out, r.err) == (3, "", "Error: no job stored at no.such\n"), cmd
    r = node.run("run", "pause", "-g", "nosuch", "--all")
    assert (r.returncode, r.err) == (3, "Error: no jobs in any-node group nosuch\n")
    r = node.run("run", "pause", "-g", "cp", "--all", "-n", "n9")
    assert (r.returncode, r.err) == (3, "Error: no jobs in single-node group cp of n9\n")
    r = node.run("run", "pause", "p.one", "-g", "cp", "--all")
    assert r.returncode == 2 and r.err.endswith("Error: give either PATH or --all, not both\n")
    r = node.run("run", "pause", "-g", "cp")
    assert r.returncode == 2 and r.err.endswith("Error: give the PATH of a job, or --all for every job of the group\n")

    async def running(c):
        await c.set(P(":.distkv.state.any.cp.p.one"), value={"node": "n1", "started": 1, "runs": 1})

    query(node.configs[0], running)
    r = node.run("run", "trigger", "p.one", "-g", "cp")
    assert (r.returncode, r.out, r.err) == (4, "", "Error: job p.one is running (on n1): not triggered\n")


def test_code_call_with_positional_args(node):
    r = node.run("code", "call", "cp.add", "40", "2")
    assert (r.returncode, r.out) == (0, "402\n")  # text
    r = node.run("code", "call", "cp.add", "-l", "40", "2")
    assert (r.returncode, r.out) == (0, "42\n")
    r = node.run("code", "call", "cp.add", "-l", "--", "-40", "2")
    assert (r.returncode, r.out) == (0, "-38\n")
    r = node.run("code", "call", "cp.add", "-l", "[1]", "-e", "b", "[2]")
    assert (r.returncode, r.out) == (0, "- 1\n- 2\n")
    r = node.run("code", "call", "cp.add", "1", "2", "3")
    assert (r.returncode, r.err) == (2, "Error: cp.add takes 2 positional arguments but 3 were given\n")
    r = node.run("code", "call", "cp.add", "-l", "1", "x(")
    assert r.returncode == 2 and r.err.endswith("Error: Invalid value for ARG 2: 'x(' is not a Python literal\n")
