"""Placement by tags with real daemons: two ``distkv server`` processes
(the session's `node`), three ``distkv client run all`` daemons, one of
them started with ``--tag relay``.

A job that requires the tag runs only there; when that daemon is killed
(-9) the job does not move to the others, ``run why`` and ``run list``
say "no live member has tag relay", and the daemons say once in their
log why they do not take it; when the daemon is back, the job runs there
again.  A job that prefers the tag runs on the tagged daemon and moves
to another when it dies.
"""

import json
import time

import pytest
from moat.util import P, yformat, yload

from tests.helpers import Daemon, query, wait_until

pytestmark = pytest.mark.slow

GROUP = "tagsg"
FOREVER = "import anyio\nawait anyio.sleep(100000)\n"


def _config(src, dst):
    with open(src) as f:
        cfg = yload(f)
    cfg["runner"] = {"timeout": 2, "heartbeat": 0.5}
    with open(dst, "w") as f:
        f.write(yformat(cfg))
    return dst


def _read(fn):
    with open(fn, encoding="utf-8", errors="replace") as f:
        return f.read()


def states(config):
    async def get(c):
        res = {}
        for j in ("hw", "lamp"):
            r = await c.get(P(f":.distkv.state.any.{GROUP}") + (j,))
            v = r.get("value") if hasattr(r, "get") else None
            res[j] = v if isinstance(v, dict) else {}
        return res

    return query(config, get)


def holder(config, job):
    return states(config)[job].get("node")


def test_a_job_requiring_a_tag_waits_for_its_member_and_a_preferring_one_moves(node, tmp_path):
    nd = node
    cfgs = [_config(nd.configs[i % 2], str(tmp_path / f"r{i + 1}.yaml")) for i in range(3)]
    assert nd.run("code", "set", f"{GROUP}.svc", "--async", "-s", "-", input=FOREVER).returncode == 0
    logs = [str(tmp_path / f"r{i + 1}.log") for i in range(3)]
    ds = [
        Daemon(cfgs[0], "-g", GROUP, "--name", "r1", "--tag", "relay", log=logs[0]),
        Daemon(cfgs[1], "-g", GROUP, "--name", "r2", log=logs[1]),
        Daemon(cfgs[2], "-g", GROUP, "--name", "r3", "--tag", "room=kitchen", log=logs[2]),
    ]
    try:
        wait_until(lambda: all("group channel" in _read(fn) for fn in logs), timeout=60, what="three daemons")
        assert "tags: relay" in _read(logs[0])
        job = ("-c", f"{GROUP}.svc", "-g", GROUP, "-t", "now")
        assert nd.run("run", "set", "hw", *job, "--require-tag", "relay").returncode == 0
        assert nd.run("run", "set", "lamp", *job, "--prefer-tag", "relay").returncode == 0
        got = json.loads(nd.run("run", "get", "hw", "-g", GROUP, "-o", "json").out)
        assert got["require_tags"] == ["relay"]
        wait_until(
            lambda: holder(cfgs[1], "hw") == "r1" and holder(cfgs[1], "lamp") == "r1",
            timeout=30,
            what="both jobs on r1",
        )
        runs_before = states(cfgs[1])["hw"]["runs"]

        ds[0].kill()
        wait_until(lambda: holder(cfgs[1], "lamp") in ("r2", "r3"), timeout=30, what="lamp moves on")
        time.sleep(3)  # more than the timeout: a take-over would have happened
        assert holder(cfgs[1], "hw") == "r1", "the relay job moved to a member without the tag"
        why = nd.run("run", "why", "hw", "-g", GROUP)
        assert why.returncode == 0 and "no live member has tag relay" in why.out, why.out
        rows = {r["path"]: r for r in json.loads(nd.run("run", "list", "-g", GROUP, "-o", "json").out)}
        assert rows["hw"]["placement"] == ["no live member has tag relay"]
        assert rows["lamp"]["placement"] == []
        for fn in logs[1:]:
            said = [line for line in _read(fn).splitlines() if "not running" in line and "hw" in line]
            assert len(said) == 1 and "no live member has tag relay" in said[0], said

        ds[0] = Daemon(cfgs[0], "-g", GROUP, "--name", "r1", "--tag", "relay", log=logs[0])
        wait_until(
            lambda: states(cfgs[1])["hw"].get("node") == "r1" and states(cfgs[1])["hw"]["runs"] > runs_before,
            timeout=30,
            what="hw runs on r1 again",
        )
        why = nd.run("run", "why", "hw", "-g", GROUP).out
        assert "running on r1" in why and "no live member" not in why, why
        for fn in logs:
            assert "Traceback" not in _read(fn)
        assert all(d.alive() for d in ds)
    finally:
        for d in ds:
            if d.alive():
                d.kill()
