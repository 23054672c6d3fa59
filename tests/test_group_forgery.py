"""Forged and malformed group messages sent to runners (in-process DistKV).

Two any-node runners share six jobs; an attacker on the same DistKV
server listens to the group and sends every forgery of `tests.forgery`,
again and again.  With or without a group key no runner crashes or
stops and no job moves to a node that is not a live member; with a key,
also the forgeries an attacker makes from what it heard (replays, real
run ids, fresh acknowledgements) are dropped.  Without a key those pass:
that is what "unauthenticated" means, and the runners say so.  The same
against real runner daemons: tests/drills (test_forged_group_messages).
"""

from contextlib import AsyncExitStack

import anyio
import pytest

from distkv_ext.code import CodeRoot
from distkv_ext.run import AnyRunnerRoot, new_group_key
from distkv_ext.run._wire import Malformed, unpack
from tests import forgery
from tests.helpers import wait_for
from tests.test_run_lib import FAST, FOREVER, LOG, add_job, clear_log  # noqa: F401  (fixture)

TOPIC = ("distkv_code", "run", "any", "g")
JOBS = [f"j{i}" for i in range(6)]


def holders(r):
    return {j: r.follow((j,), create=False).state.node for j in JOBS}


async def _group(st, stack, keyfile):
    cfg = dict(FAST, **({"group_key": keyfile} if keyfile else {}))
    rs = []
    for i, name in enumerate(("n1", "n2")):
        c = await stack.enter_async_context(st.client(i % len(st.s)))
        cr = await CodeRoot.as_handler(c)
        if i == 0:
            await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        rs.append(await AnyRunnerRoot.as_handler(c, subpath=("any", "g"), code=cr, node=name, cfg=cfg))
    for j in JOBS:
        await add_job(rs[0], j, "svc", data={"name": j})
    await wait_for(lambda: set(holders(rs[0]).values()) == {"n1", "n2"} and None not in holders(rs[0]).values())
    return rs


async def _attack(client, heard, victim, rounds, smart):
    for _ in range(rounds):
        items = forgery.naive(victim)
        if smart:
            items += forgery.smart(heard, victim)
        await forgery.send_all(client, TOPIC, items)
        await anyio.sleep(0.3)


async def _listen(client, heard, *, task_status=anyio.TASK_STATUS_IGNORED):
    async with client.msg_monitor(TOPIC, raw=True) as mon:  # raw: our own garbage would end it
        task_status.started()
        async for msg in mon:
            try:
                heard.add(unpack(msg["raw"]))
            except Malformed:
                pass


@pytest.mark.slow  # 8 s each
@pytest.mark.parametrize("keyed", [True, False], ids=["with key", "without key"])
async def test_forged_messages_change_nothing(keyed, tmp_path, autojump_clock, cluster):
    keyfile = str(tmp_path / "group.key") if keyed else None
    if keyfile:
        new_group_key(keyfile)
    async with AsyncExitStack() as stack:
        rs = await _group(cluster, stack, keyfile)
        before = holders(rs[0])
        attacker = await stack.enter_async_context(cluster.client())
        heard = forgery.Heard()
        async with anyio.create_task_group() as tg:
            await tg.start(_listen, attacker, heard)
            await anyio.sleep(1)
            await _attack(attacker, heard, "n1", rounds=20, smart=keyed)
            await anyio.sleep(2)
            tg.cancel_scope.cancel()
        for r in rs:
            assert not r.lost_event.is_set(), f"{r.node} stopped: {r.lost!r}"
            assert set(r.group.live()) == {"n1", "n2"}
            assert holders(r) == before, "a job moved"
            assert r.group.authenticated is keyed
        dropped = rs[0].group.dropped
        assert dropped["malformed"] > 0
        if keyed:
            assert dropped.get("bad-mac", 0) + dropped.get("no-mac", 0) > 0
        running = {x[0] for x in LOG if x[3] is None}
        assert running == set(JOBS)


async def test_without_a_key_a_forger_who_listens_is_believed(tmp_path, autojump_clock, cluster):
    """What "unauthenticated" means: a ghost that acknowledges the members
    is a member, and takes its share of the jobs (which then stop).  With a
    key (above) the same messages are dropped."""
    async with AsyncExitStack() as stack:
        rs = await _group(cluster, stack, None)
        attacker = await stack.enter_async_context(cluster.client())
        heard = forgery.Heard()
        async with anyio.create_task_group() as tg:
            await tg.start(_listen, attacker, heard)
            await anyio.sleep(1)
            for _ in range(10):
                ghost = forgery.smart(heard, "n1")[0][1]
                await attacker.msg_send(TOPIC, dict(ghost, q=heard.members.get("ghost", ("", 0))[1] + 1))
                await anyio.sleep(0.2)
            assert "ghost" in rs[0].group.live()
            tg.cancel_scope.cancel()
        for r in rs:
            assert not r.lost_event.is_set()


async def test_a_real_namesake_still_stops_the_younger_runner(tmp_path, autojump_clock, cluster):
    """Two runners given one name (a mistake): the younger one stops, with
    or without a key (without: its run is recorded in the store)."""
    async with AsyncExitStack() as stack:
        c1 = await stack.enter_async_context(cluster.client())
        c2 = await stack.enter_async_context(cluster.client())
        cr1, cr2 = await CodeRoot.as_handler(c1), await CodeRoot.as_handler(c2)
        old = await AnyRunnerRoot.as_handler(c1, subpath=("any", "g"), code=cr1, node="same", cfg=FAST)
        await anyio.sleep(1)
        young = await AnyRunnerRoot.as_handler(c2, subpath=("any", "g"), code=cr2, node="same", cfg=FAST)
        await wait_for(young.lost_event.is_set, timeout=10)
        assert "is called same" in str(young.lost)
        assert not old.lost_event.is_set()


@pytest.mark.slow  # 13-19 s each
@pytest.mark.parametrize("keyed", [True, False], ids=["with key", "without key"])
async def test_each_forgery_alone(keyed, tmp_path, autojump_clock, cluster):
    """Send each forgery on its own and note what the runners made of it
    (the report table of the closing note; printed with ``-s``)."""
    keyfile = str(tmp_path / "group.key") if keyed else None
    if keyfile:
        new_group_key(keyfile)
    rows = []
    async with AsyncExitStack() as stack:
        rs = await _group(cluster, stack, keyfile)
        before = holders(rs[0])
        attacker = await stack.enter_async_context(cluster.client())
        heard = forgery.Heard()
        async with anyio.create_task_group() as tg:
            await tg.start(_listen, attacker, heard)
            await anyio.sleep(1.5)
            for name, payload in forgery.naive("n1") + forgery.smart(heard, "n1"):
                seen = [dict(r.group.dropped) for r in rs]
                await forgery.send_all(attacker, TOPIC, [(name, payload)])
                await anyio.sleep(0.5)
                reasons = set()
                for r, old in zip(rs, seen, strict=True):
                    reasons |= {k for k, v in r.group.dropped.items() if v > old.get(k, 0)}
                live = set(rs[0].group.live()) | set(rs[1].group.live())
                stopped = [r.node for r in rs if r.lost_event.is_set()]
                if stopped:
                    outcome = f"STOPPED {stopped}"
                elif reasons:
                    outcome = "dropped: " + ", ".join(sorted(reasons))
                elif live != {"n1", "n2"}:
                    outcome = f"believed: members now {sorted(live)}"
                else:
                    outcome = "ignored (not fresh / nothing to do)"
                rows.append((name, outcome))
                assert not stopped, f"{name}: {outcome}"
                if "ghost" in live:  # believed (without a key): let it expire before the next one
                    await anyio.sleep(3)
            tg.cancel_scope.cancel()
        for r in rs:
            assert not r.lost_event.is_set()
        await anyio.sleep(3)
        assert holders(rs[0]) == before or not keyed
    report = "\n".join(f"| {n} | {o} |" for n, o in rows)
    (tmp_path / "forgeries.md").write_text(report + "\n")
    print(f"\n{'with' if keyed else 'without'} key:\n{report}")
    if keyed:
        assert all(o.startswith(("dropped", "ignored")) for _, o in rows), report
