"""Forged, malformed and replayed group messages against real runner daemons.

Two real DistKV servers, three ``distkv client run all`` daemons sharing
six any-node jobs, and an attacker: a client of the second server that
listens to the group's topic and sends every forgery of `tests.forgery`
for several seconds (with a group key: also the ones made from what it
heard; without one those would be believed, see test_group_forgery.py).
Then one daemon is killed with -9 and another restarted, and the
attacker replays the dead daemon's recorded messages to keep it "alive".

Checked, with and without a key: no daemon crashes or stops, no job
moves while the group is whole, the dead daemon's jobs move to the live
ones despite the replay, no state ever names a node that is not a
runner; ``run list`` / ``run why`` say how the group speaks.
"""

import json
import time

import anyio
import pytest
from moat.util import P, yformat, yload

from distkv_ext.run import new_group_key
from distkv_ext.run._wire import Malformed, unpack
from tests import forgery
from tests.helpers import Daemon, query, running_node, wait_until

pytestmark = pytest.mark.slow

TOPIC = ("distkv_code", "run", "any", "fg")
JOBS = [f"j{i}" for i in range(6)]
RUNNERS = ("r1", "r2", "r3")
FOREVER = "import anyio\nawait anyio.sleep(100000)\n"


def _config(src, dst, keyfile):
    with open(src) as f:
        cfg = yload(f)
    cfg["runner"] = {"timeout": 2, "heartbeat": 0.5, **({"group_key": keyfile} if keyfile else {})}
    with open(dst, "w") as f:
        f.write(yformat(cfg))
    return dst


def _read(fn):
    with open(fn, encoding="utf-8", errors="replace") as f:
        return f.read()


def holders(config):
    async def get(c):
        res = {}
        for j in JOBS:
            r = await c.get(P(":.distkv.state.any.fg") + (j,))
            v = r.get("value") if hasattr(r, "get") else None
            res[j] = v.get("node") if isinstance(v, dict) else None
        return res

    return query(config, get)


def attack(config, seconds, smart):
    """Listen, then send every forgery again and again; return what was heard."""

    async def run(c):
        heard = forgery.Heard()

        async def listen(task_status=anyio.TASK_STATUS_IGNORED):
            async with c.msg_monitor(TOPIC, raw=True) as mon:
                task_status.started()
                async for msg in mon:
                    try:
                        heard.add(unpack(msg["raw"]))
                    except Malformed:
                        pass

        async with anyio.create_task_group() as tg:
            await tg.start(listen)
            await anyio.sleep(2)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                items = forgery.naive("r1")
                if smart:
                    items += forgery.smart(heard, "r1")
                await forgery.send_all(c, TOPIC, items)
                await anyio.sleep(0.3)
            tg.cancel_scope.cancel()
        return heard

    return query(config, run)


def replay(config, messages, seconds, watch_config):
    """Replay ``messages`` (each once, 0.25 s apart, over and over) for
    ``seconds``; return the job holders seen meanwhile (a set of node names)."""
    seen = set()

    async def run(c):
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            await c.msg_send(TOPIC, messages[i % len(messages)])
            i += 1
            if i % 4 == 0:
                for j in JOBS:
                    r = await c.get(P(":.distkv.state.any.fg") + (j,))
                    v = r.get("value") if hasattr(r, "get") else None
                    if isinstance(v, dict) and v.get("node"):
                        seen.add(v["node"])
            await anyio.sleep(0.25)

    query(config, run)
    return seen


@pytest.mark.parametrize("keyed", [True, False], ids=["with key", "without key"])
def test_forged_group_messages_against_real_daemons(keyed, tmp_path):
    keyfile = str(tmp_path / "group.key") if keyed else None
    if keyfile:
        new_group_key(keyfile)
    with running_node(tmp_path / "node", n=2, timeout=120) as nd:
        cfgs = [_config(nd.configs[i % 2], str(tmp_path / f"r{i + 1}.yaml"), keyfile) for i in range(3)]
        assert nd.run("code", "set", "fg.svc", "--async", "-s", "-", input=FOREVER).returncode == 0
        logs = [str(tmp_path / f"{n}.log") for n in RUNNERS]
        ds = [Daemon(cfgs[i], "-g", "fg", "--name", n, log=logs[i]) for i, n in enumerate(RUNNERS)]
        try:
            for j in JOBS:
                assert nd.run("run", "set", j, "-c", "fg.svc", "-g", "fg", "-t", "now").returncode == 0
            wait_until(
                lambda: set(holders(nd.configs[0]).values()) == set(RUNNERS),
                timeout=90,
                what="every job running, on every runner",
            )
            time.sleep(3)  # settled
            before = holders(nd.configs[0])

            heard = attack(nd.configs[1], seconds=8, smart=keyed)
            time.sleep(3)
            assert all(d.alive() for d in ds), "a daemon stopped"
            assert holders(nd.configs[0]) == before, "a job moved during the attack"
            text = "".join(_read(fn) for fn in logs)
            assert "group messages not believed" in text
            assert "Traceback" not in text

            # how the group speaks, in run list / run why
            rows = json.loads(nd.run("run", "list", "-g", "fg", "-o", "json").out)
            assert {r["group_auth"] for r in rows} == {"authenticated" if keyed else "unauthenticated"}
            why = nd.run("run", "why", "j0", "-g", "fg").out
            assert ("group: authenticated" if keyed else "group: UNAUTHENTICATED") in why
            if not keyed:
                assert "is UNAUTHENTICATED" in _read(logs[0])

            # r3 dies; r2 restarts (a receiver that never heard r3's old
            # messages); the attacker replays r3's recorded messages
            recorded = [m for m in heard.recorded if m.get("node") == "r3"]
            assert recorded
            ds[2].kill()
            ds[1].term()
            ds[1] = Daemon(cfgs[1], "-g", "fg", "--name", "r2", log=logs[1])
            seen = replay(nd.configs[1], recorded, 15, nd.configs[0])
            after = holders(nd.configs[0])
            assert set(after.values()) <= {"r1", "r2"} and None not in after.values(), after
            assert seen <= set(RUNNERS)  # never a ghost
            assert ds[0].alive() and ds[1].alive()
        finally:
            for d in ds:
                if d.alive():
                    d.kill()
