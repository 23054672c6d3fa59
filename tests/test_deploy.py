"""Deploying a directory (`distkv_ext.deploy`) against in-process DistKV servers."""

import os
import shutil

import pytest
from moat.util import P

from distkv_ext.code import CodeRoot, get_procedure, store_procedure
from distkv_ext.codekit.core.digest import pin_hash
from distkv_ext.codekit.core.errors import NotFound
from distkv_ext.codekit.store import history
from distkv_ext.codekit.store.entries import list_entries
from distkv_ext.deploy import DeployConflict, DeployRefused, apply_deploy, plan_deploy, read_tree
from distkv_ext.module import get_module
from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._ops import get_job
from tests.helpers import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "deploy")
FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}


def write(root, rel, text):
    full = os.path.join(root, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def example(tmp_path):
    d = tmp_path / "deploy"
    shutil.copytree(EXAMPLE, d)
    return str(d)


async def deploy(c, root, **kw):
    plan = await plan_deploy(c, read_tree(root), **kw)
    return plan, await apply_deploy(c, plan)


def actions(plan):
    return sorted((c.action, c.label) for c in plan.pending)


async def test_example_into_an_empty_store_then_a_no_op(example, autojump_clock, client):
    plan, res = await deploy(client, example)
    assert actions(plan) == [
        ("add", "job heating.pump.1 (any boiler)"),
        ("add", "job heating.report (at pi1 boiler)"),
        ("add", "module util"),
        ("add", "module util.pid"),
        ("add", "procedure heating.pump"),
        ("add", "procedure heating.report"),
    ]
    assert res.written == 6 and not plan.problems
    proc, _ = await get_procedure(client, "heating.pump")
    assert proc["is_async"] is True and list(proc["vars"]) == ["pump", "setpoint", "interval"]
    assert proc["default"] == {"setpoint": 21.5, "interval": 60} and list(proc["requires"]) == ["util.pid"]
    assert proc["code"].startswith("# distkv:\n")  # the header stays: line numbers are the file's
    mod, _ = await get_module(client, "util.pid")
    assert list(mod["requires"]) == ["util"] and mod["info"] == "A plain PID controller"
    job, _ = await get_job(client, "any", "boiler", "heating.pump.1")
    assert job["code"] == P("heating.pump") and job["data"] == {"pump": 1} and job["target"] > 0
    mods = {"util": (await get_module(client, "util"))[0], "util.pid": mod}
    assert job["pin"] == pin_hash(proc, mods.get)  # the procedure and the modules it needs
    single, _ = await get_job(client, "single", "boiler", "heating.report", node="pi1")
    assert single["repeat"] == 3600 and single["delay"] == 10  # the defaults of a new job

    again = await plan_deploy(client, read_tree(example))
    assert again.pending == [] and again.count("unchanged") == 6  # "target: now" keeps the start time


async def test_change_and_prune_keep_history(example, autojump_clock, client):
    await deploy(client, example)
    await store_procedure(client, "other.proc", lambda old: dict(code="return 1"))
    write(example, "procs/heating/report.py", "# distkv:\n#   info: shorter\nreturn 2\n")
    os.remove(os.path.join(example, "modules/util/pid.py"))
    write(example, "procs/heating/pump.py", "return pump\n# distkv:\n")
    plan = await plan_deploy(client, read_tree(example))
    assert plan.problems == ["procs/heating/pump.py:2: the '# distkv:' header must come first"]
    write(example, "procs/heating/pump.py", "# distkv:\n#   vars: [pump]\nreturn pump\n")
    plan, _ = await deploy(client, example)
    assert actions(plan) == [
        ("change", "job heating.pump.1 (any boiler)"),  # pinned: the new hash
        ("change", "procedure heating.pump"),
        ("change", "procedure heating.report"),
    ]
    diff = next(ch.diff for ch in plan.pending if ch.path == P("heating.report"))
    assert "-    async for r in _client.get_tree" in diff and "+return 2" in diff and "-is_async: true" in diff
    # without --prune nothing is removed
    await get_module(client, "util.pid")
    plan, _res = await deploy(client, example, prune=True)
    # other.proc was stored by hand, not by this tree: --prune leaves it alone
    assert actions(plan) == [("remove", "module util.pid")]
    assert plan.pending[0].why == f"written by deploy tree 'deploy', no longer in {example}"
    await get_procedure(client, "other.proc")
    with pytest.raises(NotFound):
        await get_module(client, "util.pid")
    old = await history.versions(client, "module", "util.pid")
    assert old[-1]["value"]["info"] == "A plain PID controller"
    old = await history.versions(client, "proc", "heating.report")
    assert "async for" in old[-1]["value"]["code"]


async def test_invalid_files_write_nothing(example, autojump_clock, client):
    write(example, "procs/bad/syntax.py", "x = (\n")
    write(example, "procs/README.md", "ignored")
    write(example, "procs/notes.cfg", "not python")
    write(example, "modules/a/__init__.py", "# distkv:\n#   requires: b\n")
    write(example, "modules/b.py", "# distkv:\n#   requires: [a]\n")
    write(example, "modules/c.py", "# distkv:\n#   requires: [nowhere]\n#   colour: red\n")
    with open(os.path.join(example, "procs/bin.py"), "wb") as f:
        f.write(b"return 1\0\n")
    with open(os.path.join(example, "jobs.yaml"), "a", encoding="utf-8") as f:
        f.write(
            "  - code: no.such.proc\n  - code: heating.pump\n    repeat: soon\n  - code: heating.pump\n    path: p2\n"
        )
    plan = await plan_deploy(client, read_tree(example))
    assert sorted(plan.problems) == [
        "jobs.yaml:16: job 3: runs procedure no.such.proc, which is neither in the directory nor stored",
        "jobs.yaml:18: job 4: repeat must be a number, not 'soon'",
        "jobs.yaml:19: job 5 (p2): procedure heating.pump needs pump: give them in the job's data",
        "modules/a/__init__.py: requires form a cycle: a -> b -> a",
        "modules/c.py:3: unknown header setting colour (known: requires, info)",
        "procs/bad/syntax.py:1: '(' was never closed (for bad.syntax)",
        "procs/bin.py: binary file (contains NUL bytes), not Python source",
        "procs/notes.cfg: not a .py file (a procedure is NAME.py)",
    ]
    with pytest.raises(DeployRefused, match="8 problems; nothing written"):
        await apply_deploy(client, plan)
    assert [x async for x in list_entries(client, P(":.distkv.code"))] == []
    assert [x async for x in list_entries(client, P(":.distkv.run"))] == []


async def test_concurrent_edit_is_detected_not_overwritten(example, autojump_clock, client, cluster):
    async with cluster.client() as other:
        await deploy(client, example)
        write(example, "procs/heating/report.py", "return 'ours'\n")
        write(example, "procs/new/one.py", "return 'new'\n")
        write(example, "modules/util/__init__.py", "X = 'ours'\n")
        plan = await plan_deploy(client, read_tree(example))
        # someone else edits one entry and creates another after the plan was made
        await store_procedure(other, "heating.report", lambda old: dict(old, code="return 'theirs'"))
        await store_procedure(other, "new.one", lambda old: dict(code="return 'first'"))
        with pytest.raises(DeployConflict) as exc:
            await apply_deploy(client, plan)
        assert exc.value.conflicts == ["procedure heating.report", "procedure new.one"]
        assert exc.value.exit_status == 1
        assert "not overwritten: procedure heating.report, procedure new.one (1 written" in str(exc.value)
        assert (await get_procedure(client, "heating.report"))[0]["code"] == "return 'theirs'"
        assert (await get_procedure(client, "new.one"))[0]["code"] == "return 'first'"
        assert (await get_module(client, "util"))[0]["code"] == "X = 'ours'\n"  # the step before went through
        plan = await plan_deploy(client, read_tree(example))  # a new plan shows their edit
        ch = {x.label: x for x in plan.pending}
        assert "-return 'theirs'" in ch["procedure heating.report"].diff


async def test_deploy_pins_and_the_runner_refuses_changed_code(tmp_path, autojump_clock, client):
    root = str(tmp_path)
    write(root, "procs/p.py", "return 7\n")
    write(root, "jobs.yaml", "jobs:\n  - code: p\n    group: g\n    target: now\n    repeat: 1\n    delay: 1\n")
    plan, _ = await deploy(client, root, pin=True)
    job, _ = await get_job(client, "any", "g", "p")
    assert job["pin"] == pin_hash((await get_procedure(client, "p"))[0], {}.get)
    cr = await CodeRoot.as_handler(client)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    entry = r.follow(P("p"))
    await wait_for(lambda: entry.state.result == 7, timeout=60, step=0.1)
    await store_procedure(client, "p", lambda old: dict(old, code="return 8"))
    await wait_for(lambda: entry.state.error is not None, timeout=60, step=0.1)
    assert entry.state.error.startswith("the procedure or a module it needs changed since the job was pinned")
    # deploying again puts the pinned code back
    plan = await plan_deploy(client, read_tree(root), pin=True)
    assert actions(plan) == [("change", "procedure p")]
