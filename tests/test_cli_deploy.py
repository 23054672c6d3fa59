"""``distkv client code deploy`` through the real ``distkv`` command."""

import json
import os
import shutil

import pytest

from tests.helpers import running_node

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "deploy")

pytestmark = pytest.mark.usefixtures("node")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """Servers of its own: ``deploy --prune`` removes whatever else is stored."""
    with running_node(tmp_path_factory.mktemp("deploy-node"), n=2) as nd:
        yield nd


@pytest.fixture
def example(tmp_path):
    d = tmp_path / "deploy"
    shutil.copytree(EXAMPLE, d)
    return str(d)


ADDED = """\
+ module util                                      modules/util/__init__.py
+ module util.pid                                  modules/util/pid.py
+ procedure heating.pump                           procs/heating/pump.py
+ procedure heating.report                         procs/heating/report.py
+ job heating.pump.1 (any boiler)                  jobs.yaml:7: job 1 (heating.pump.1)
+ job heating.report (at pi1 boiler)               jobs.yaml:12: job 2
"""


def test_dry_run_deploy_and_no_op(node, example):
    r = node.run("code", "deploy", example, "--dry-run")
    assert r.outcome == (
        1,
        ADDED + "Plan: 6 to add, 0 to change, 0 to remove, 0 unchanged. Dry run: nothing written.\n",
        "",
    )
    r = node.run("code", "deploy", example)
    assert r.outcome == (0, ADDED + "Deployed: 6 added, 0 changed, 0 removed, 0 unchanged.\n", "")
    r = node.run("code", "deploy", example, "--dry-run")
    assert r.outcome == (0, "No changes (6 unchanged).\n", "")  # a CI gate: nothing to do
    r = node.run("code", "get", "heating.pump", "-o", "json", server=1)  # the other server has it too
    assert json.loads(r.stdout)["requires"] == ["util.pid"]

    with open(os.path.join(example, "procs/heating/report.py"), "a", encoding="utf-8") as f:
        f.write("return len(speeds)\n")
    r = node.run("code", "deploy", example, "--dry-run", "-o", "json")
    plan = json.loads(r.stdout)
    assert r.returncode == 1 and plan["summary"] == {"add": 0, "change": 1, "remove": 0, "unchanged": 5}
    (ch,) = plan["changes"]
    assert (ch["label"], ch["source"]) == ("procedure heating.report", "procs/heating/report.py")
    assert ch["diff"].endswith(" return speeds\n+return len(speeds)\n")
    r = node.run("code", "deploy", example, "--no-diff")
    assert r.outcome == (
        0,
        "~ procedure heating.report                         procs/heating/report.py\n"
        "Deployed: 0 added, 1 changed, 0 removed, 5 unchanged.\n",
        "",
    )
    r = node.run("code", "history", "heating.report", "-o", "json")
    assert [v["n"] for v in json.loads(r.stdout)] == [1, "current"]

    os.remove(os.path.join(example, "procs/heating/report.py"))
    r = node.run("code", "deploy", example, "--prune", "--dry-run")
    assert r.outcome == (
        4,
        "",
        "jobs.yaml:12: job 2: runs procedure heating.report, which --prune would remove\n"
        f"Error: {example}: 1 problem; nothing written\n",
    )
    with open(os.path.join(example, "jobs.yaml"), "w", encoding="utf-8") as f:
        f.write(
            "jobs:\n  - {path: heating.pump.1, code: heating.pump, group: boiler, data: {pump: 1}, target: now, pin: true}\n"
        )
    r = node.run("code", "deploy", example, "--prune")
    assert r.outcome == (
        0,
        f"- procedure heating.report                         written by deploy tree 'deploy', no longer in {example}\n"
        f"- job heating.report (at pi1 boiler)               written by deploy tree 'deploy', no longer in {example}\n"
        "Deployed: 0 added, 0 changed, 2 removed, 4 unchanged.\n",
        "",
    )
    r = node.run("code", "get", "heating.report")
    assert r.outcome == (3, "", "Error: no procedure stored at heating.report\n")


def test_refused_deploys_name_every_problem(node, tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "procs"))
    with open(os.path.join(root, "procs", "a.py"), "w", encoding="utf-8") as f:
        f.write("return (\n")
    with open(os.path.join(root, "procs", "b.py"), "wb") as f:
        f.write(b"\xff\xfe")
    r = node.run("code", "deploy", root)
    assert r.outcome == (
        4,
        "",
        "procs/a.py:1: '(' was never closed (for a)\n"
        "procs/b.py: not UTF-8 text (byte 0xff in line 1)\n"
        f"Error: {root}: 2 problems; nothing written\n",
    )
    r = node.run("code", "get", "a")
    assert r.returncode == 3
    r = node.run("code", "deploy", root, "-o", "json")
    assert r.returncode == 4 and len(json.loads(r.stdout)["problems"]) == 2
    r = node.run("code", "deploy", os.path.join(root, "nowhere"))
    assert r.outcome == (4, "", f"Error: {root}/nowhere: not a directory\n")
    r = node.run("code", "deploy", os.path.join(root, "procs"))
    assert r.outcome == (4, "", f"Error: {root}/procs: has none of procs/, modules/, jobs.yaml: nothing to deploy\n")
