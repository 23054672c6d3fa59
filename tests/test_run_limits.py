"""A concurrency limit against real runner daemons, with a holder killed.

Two real DistKV servers, three ``distkv client run all`` daemons (two on
one server, one on the other) and three any-node jobs of the group
sharing ``--limit bus=1``.  Each run records its start and stop in the
store.  One job runs; the others wait, and ``run why`` says so.  The
daemon running it is killed with -9 mid-run: its slot is freed when the
group counts it gone, the other jobs run one after the other, the killed
job is taken over and runs again, and at no moment did two runs of the
limit run at once (the killed run counts as running until the kill).
"""

import json
import time

import pytest
from moat.util import P, yformat, yload

from distkv_ext.codekit.store.entries import list_entries
from tests.helpers import Daemon, query, running_node, wait_until
from tests.test_run_limits_lib import max_at_once

pytestmark = pytest.mark.slow

RUNNERS = ("r1", "r2", "r3")
JOBS = ("j0", "j1", "j2")
HOLD = """
import time, uuid, anyio
from moat.util import P
key = P(":.lt_runs") + (name, uuid.uuid4().hex)
rec = {"job": name, "node": _entry.root.node, "start": time.time(), "stop": None}
await _client.set(key, value=rec)
await anyio.sleep(hold)
rec["stop"] = time.time()
await _client.set(key, value=rec)
"""


def _config(src, dst):
    with open(src) as f:
        cfg = yload(f)
    cfg["runner"] = {"timeout": 2, "heartbeat": 0.5}
    with open(dst, "w") as f:
        f.write(yformat(cfg))
    return dst


def runs(config):
    """The runs recorded so far: [job, node, start, stop]."""

    async def get(c):
        res = []
        async for _, v in list_entries(c, P(":.lt_runs")):
            if isinstance(v, dict):
                res.append([v["job"], v["node"], v["start"], v["stop"]])
        return sorted(res, key=lambda x: x[2])

    return query(config, get)


def states(config):
    async def get(c):
        res = {}
        for j in JOBS:
            r = await c.get(P(":.distkv.state.any.lt") + (j,))
            v = r.get("value") if hasattr(r, "get") else None
            res[j] = v if isinstance(v, dict) else {}
        return res

    return query(config, get)


def slots(config):
    async def get(c):
        return [(tuple(p), v) async for p, v in list_entries(c, P(":.distkv.state.limit.lt"))]

    return [s for s in query(config, get) if s[1] is not None]


def test_a_killed_holder_frees_its_slot(tmp_path):
    with running_node(tmp_path / "node", n=2, timeout=120) as nd:
        cfgs = [_config(nd.configs[i % 2], str(tmp_path / f"r{i + 1}.yaml")) for i in range(3)]
        assert nd.run("code", "set", "lt.hold", "--async", "-s", "-", input=HOLD).returncode == 0
        ds = {
            n: Daemon(cfgs[i], "-g", "lt", "--name", n, log=str(tmp_path / f"{n}.log")) for i, n in enumerate(RUNNERS)
        }
        try:
            time.sleep(3)  # the daemons hear each other: the jobs spread over them
            for j in JOBS:
                r = nd.run("run", "set", j, "-c", "lt.hold", "-g", "lt", "-v", "name", j, "-e", "hold", "6",
                           "--limit", "bus=1", "-t", "now")  # fmt: skip
                assert r.returncode == 0, r.err
            first = wait_until(lambda: runs(nd.configs[0]), timeout=60, what="a first run")
            assert len(first) == 1
            holder = first[0][1]
            waiting = wait_until(
                lambda: [j for j, s in states(nd.configs[0]).items() if s.get("waiting") == "waiting for limit bus (1/1 in use)"],
                timeout=30,
                what="the others waiting for the limit",
            )  # fmt: skip
            why = nd.run("run", "why", waiting[0], "-g", "lt")
            assert why.returncode == 0 and "waiting for limit bus (1/1 in use)" in why.out, why.out
            listed = nd.run("run", "list", "-g", "lt", "-o", "json", "--no-listen")
            assert listed.returncode == 0, listed.err
            words = {r["path"]: r["state"] for r in json.loads(listed.out)}
            assert words[waiting[0]] == "waiting for limit bus (1/1 in use)", words
            assert words[first[0][0]] in ("running", "done"), words
            assert [(p, v["node"]) for p, v in slots(nd.configs[0])] == [(("bus", "0"), holder)]

            time.sleep(1)
            assert len(runs(nd.configs[0])) == 1, "nothing else started meanwhile"
            ds[holder].kill()
            killed = time.time()
            # the next run starts once the group counts the holder gone
            wait_until(lambda: len(runs(nd.configs[0])) >= 2, timeout=60, what="a run after the kill")
            # every job ends once, the killed one too (taken over)
            wait_until(
                lambda: {x[0] for x in runs(nd.configs[0]) if x[3] is not None} == set(JOBS),
                timeout=120,
                what="every job ran to its end",
            )
            log = runs(nd.configs[0])
            open_runs = [x for x in log if x[3] is None]
            assert [x[1] for x in open_runs] == [holder], "only the killed run never ended"
            log = [[j, n, s, killed if e is None else e] for j, n, s, e in log]
            assert max_at_once(log) == 1, log
            assert all(d.alive() for n, d in ds.items() if n != holder)
            wait_until(lambda: not slots(nd.configs[0]), timeout=30, what="every slot freed")
        finally:
            for d in ds.values():
                if d.alive():
                    d.term()
