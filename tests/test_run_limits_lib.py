"""Concurrency limits (``limits: {NAME: N}``): the slot table's logic, and
runners in one process (DistKV's in-process harness) sharing a limit.

The in-process tests check from the runs' own recorded start and stop
times that no moment had more than N runs of a limit, and that every job
ran; `max_at_once` is that check."""

import dataclasses
import json
import time
from contextlib import AsyncExitStack

import anyio
import pytest
from moat.util import P

from distkv_ext.code import CodeRoot
from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.run import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from distkv_ext.run._assign import score
from distkv_ext.run._config import RunnerConfig
from distkv_ext.run._groupauth import GroupKeys
from distkv_ext.run._limitchan import LimitChannel, _Contest, _Hold
from distkv_ext.run._limits import (
    Holder,
    SlotTable,
    holder_of,
    job_limits,
    slot_key,
    split_key,
    waiting_text,
)
from tests.helpers import in_process_cluster, wait_for
from tests.test_run_lib import FAST, add_job

LOG: list[list] = []  # [job, node, start, stop]

# an async job that holds its run for ``hold`` seconds, logging its interval
HOLD = """
import anyio, time
import tests.test_run_limits_lib as t
rec = [name, _entry.root.node, time.time(), None]
t.LOG.append(rec)
try:
    await anyio.sleep(hold)
finally:
    rec[3] = time.time()
"""


@pytest.fixture(autouse=True)
def clear_log():
    LOG.clear()


def max_at_once(log):
    """The most runs in ``log`` ([job, node, start, stop]; stop None: still
    running) that were running at one moment.  A run that ends at the
    moment another starts does not overlap it."""
    events = []
    for _, _, start, stop in log:
        events.append((start, 1))
        events.append((float("inf") if stop is None else stop, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # ends before starts at the same time
    most = now = 0
    for _, d in events:
        now += d
        most = max(most, now)
    return most


# ---- the pure part --------------------------------------------------------


def _h(member="r1:any", run="i1", job="j"):
    return Holder(member, run, member.split(":")[0], member.split(":")[1], job, 1.0).value()


def test_max_at_once_counts_overlaps():
    assert max_at_once([["a", "n", 0, 2], ["b", "n", 1, 3], ["c", "n", 2, 4]]) == 2
    assert max_at_once([["a", "n", 0, 1], ["b", "n", 1, 2]]) == 1
    assert max_at_once([["a", "n", 0, None], ["b", "n", 5, 6], ["c", "n", 5.5, 7]]) == 3


def test_slot_keys_and_holders():
    assert split_key(slot_key("sensor-bus.2", 7)) == ("sensor-bus.2", 7)
    for bad in ("bus", "bus#", "#3", "bus#x", "bus#-1", "bus#10000"):
        assert split_key(bad) is None
    h = holder_of(_h())
    assert h is not None and (h.member, h.run, h.node, h.kind, h.job, h.since) == (
        "r1:any",
        "i1",
        "r1",
        "any",
        "j",
        1.0,
    )
    for garbage in (None, 3, "x", [], {}, {**_h(), "member": 5}, {**_h(), "run": ""}, {**_h(), "job": None}):
        assert holder_of(garbage) is None
    assert holder_of({**_h(), "since": float("nan")}).since is None


def test_in_use_counts_live_holders_and_fresh_garbage():
    t = SlotTable(garbage_after=2.0)
    t.put("bus", 0, _h("r1:any"), chain="c0", now=100.0)
    t.put("bus", 1, _h("r2:all"), chain="c1", now=100.0)
    t.put("bus", 2, {"what": "garbage"}, chain="c2", now=100.0)
    t.put("other", 0, _h("r3:any"), now=100.0)
    live = {"r1:any"}

    def is_live(name, slot, h):
        return h.member in live

    assert set(t.in_use("bus", is_live, now=101.0)) == {0, 2}  # r2 is gone; the garbage is fresh
    assert set(t.in_use("bus", is_live, now=102.5)) == {0}  # ... and now old
    stale = {(n, s) for n, s, _, _ in t.stale(is_live, now=102.5)}
    assert stale == {("bus", 1), ("bus", 2), ("other", 0)}
    # the same garbage again keeps its age; a real holder in its place counts
    t.put("bus", 2, {"what": "garbage"}, chain="c3", now=102.0)
    assert 2 not in t.in_use("bus", is_live, now=102.5)
    t.put("bus", 2, _h("r1:any", job="k"), now=102.6)
    assert set(t.in_use("bus", is_live, now=102.7)) == {0, 2}
    t.put("bus", 0, None)
    t.put("bus", 2, None)
    t.put("bus", 1, None)
    assert t.names() == ["other"] and t.in_use("bus", is_live) == {}


def test_free_slot_and_a_lowered_limit():
    assert SlotTable.free_slot(2, set()) == 0
    assert SlotTable.free_slot(3, {0, 2}) == 1
    assert SlotTable.free_slot(2, {0, 1}) is None
    # N lowered from 4 to 2 while slots 2 and 3 run: slots 0 and 1 look
    # free, but 2 are in use: the caller starts nothing (it counts first)
    used = {2: None, 3: None}
    assert len(used) >= 2 and SlotTable.free_slot(2, used) == 0


def test_job_limits_in_name_order_and_refused():
    assert job_limits(None) == [] and job_limits({}) == []
    assert job_limits({"z": 1, "a": 3}) == [("a", 3), ("z", 1)]
    for bad in ({"bus": 0}, {"bus": "2"}, {"bus#": 1}, [1], "bus=2", {"x": float("nan")}):
        with pytest.raises(InputRefused):
            job_limits(bad)


def test_waiting_text():
    assert waiting_text("bus", 2, 2) == "waiting for limit bus (2/2 in use)"
    assert waiting_text("bus", 0, 2, "hearing its group") == "waiting for limit bus (hearing its group)"


# ---- runners in one process ---------------------------------------------


async def _runner(st, stack, i, kind, subpath, name, cfg=FAST):
    c = await stack.enter_async_context(st.client(i % len(st.s)))
    cr = await CodeRoot.as_handler(c)
    return await kind.as_handler(c, subpath=subpath, code=cr, node=name, cfg=cfg)


@pytest.mark.slow  # about 10 s of CPU under the autojump clock
async def test_six_jobs_over_three_runners_never_more_than_two(autojump_clock, cluster2):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
        rs = [await _runner(cluster2, stack, i, AnyRunnerRoot, ("any", "g"), f"n{i + 1}") for i in range(3)]
        for r in rs:
            await r.wait_ready()
        await anyio.sleep(2)
        for i in range(6):
            await add_job(rs[0], f"j{i}", "hold", data={"name": f"j{i}", "hold": 1.0}, limits={"bus": 2})
        await wait_for(lambda: len(LOG) == 6 and all(x[3] is not None for x in LOG), timeout=60)
        assert sorted(x[0] for x in LOG) == [f"j{i}" for i in range(6)]
        assert max_at_once(LOG) == 2
        assert len({x[1] for x in LOG}) >= 2  # spread over the runners
        # every slot is given back, in the store too
        await wait_for(lambda: _slots(c0, "g"), what="no slot left")


async def _slots(client, group):
    """No slot entry of ``group`` is left."""
    return not [p for p, v in await _slot_entries(client, group) if v is not None]


async def _slot_entries(client, group):
    res = []
    async for r in client.get_tree(P(":.distkv.state.limit") + (group,)):
        res.append((tuple(r.path), r.get("value")))
    return res


async def test_limit_shared_by_all_three_kinds_and_waiting_text(autojump_clock, cluster2):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
        ra = await _runner(cluster2, stack, 0, AnyRunnerRoot, ("any", "k"), "n1")
        rl = await _runner(cluster2, stack, 1, AllRunnerRoot, ("all", "k"), "n2")
        rs = await _runner(cluster2, stack, 0, SingleRunnerRoot, ("at", "n3", "k"), "n3")
        for r in (ra, rl, rs):
            await r.wait_ready()
        ja = await add_job(ra, "a", "hold", data={"name": "a", "hold": 3.0}, limits={"bus": 1})
        await wait_for(lambda: len(LOG) == 1)
        jl = await add_job(rl, "l", "hold", data={"name": "l", "hold": 3.0}, limits={"bus": 1})
        js = await add_job(rs, "s", "hold", data={"name": "s", "hold": 3.0}, limits={"bus": 1})
        await wait_for(lambda: jl.state.waiting == "waiting for limit bus (1/1 in use)", what="all-node waits")
        await wait_for(lambda: js.state.waiting == "waiting for limit bus (1/1 in use)", what="single waits")
        entries = await _slot_entries(c0, "k")
        assert [(p, v["member"], v["job"]) for p, v in entries if v] == [(("bus", "0"), "n1:any", "a")]
        await wait_for(lambda: len(LOG) == 3 and all(x[3] is not None for x in LOG), timeout=60)
        assert max_at_once(LOG) == 1
        assert ja.state.waiting is None and jl.state.waiting is None and js.state.waiting is None


async def test_several_limits_and_a_garbage_slot(autojump_clock, cluster2):
    """A job with two limits holds both; a slot entry of garbage counts as
    taken, then (after ``timeout``) as free, and nothing crashes."""
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
        await c0.set(P(":.distkv.state.limit.m.disk.0"), value="garbage")
        await c0.set(P(":.distkv.state.limit.m.disk.x"), value={"member": 1})  # no slot: ignored
        await c0.set(P(":.distkv.state.limit.m.bus"), value=[1, 2])  # no slot: ignored
        rs = [await _runner(cluster2, stack, i, AnyRunnerRoot, ("any", "m"), f"n{i + 1}") for i in range(2)]
        for r in rs:
            await r.wait_ready()
        for i in range(4):
            await add_job(rs[0], f"b{i}", "hold", data={"name": f"b{i}", "hold": 1.0}, limits={"disk": 1, "bus": 2})
        await wait_for(lambda: len(LOG) == 4 and all(x[3] is not None for x in LOG), timeout=60)
        assert max_at_once(LOG) == 1  # disk=1 rules
        assert all(r.lost is None and r.limits.channels["m"].lost is None for r in rs)  # nothing broke

        async def only_the_ignored_left():
            return sorted(p for p, v in await _slot_entries(c0, "m") if v is not None) == [("bus",), ("disk", "x")]

        await wait_for(only_the_ignored_left, what="the garbage slot swept, every slot freed")


async def test_a_lowered_limit_starts_nothing_until_below(autojump_clock, client, cr):
    await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "w"), code=cr, node="n1", cfg=FAST)
    await r.wait_ready()
    long = [await add_job(r, f"l{i}", "hold", data={"name": f"l{i}", "hold": 5.0}, limits={"bus": 3}) for i in range(3)]
    await wait_for(lambda: len(LOG) == 3)
    t0 = time.time()
    late = await add_job(r, "late", "hold", data={"name": "late", "hold": 0.1}, limits={"bus": 2})
    await wait_for(lambda: late.state.waiting == "waiting for limit bus (3/2 in use)")
    await wait_for(lambda: len(LOG) == 4, timeout=30)
    late_start = LOG[3][2]
    ended = sorted(float("inf") if x[3] is None else x[3] for x in LOG[:3])
    assert ended[1] <= late_start, "started only once fewer than 2 were in use"
    assert all(j.state.waiting is None for j in long) and t0 <= late_start


async def test_race_two_runners_two_servers_same_moment(autojump_clock, cluster2):
    """Two single-node runners, each on its own server, get a job of the
    limit ``bus=1`` at the same moment, five times over: each time both
    claim slot 0 at once; one wins, the other waits, never both run."""
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
        rs = [
            await _runner(cluster2, stack, i, SingleRunnerRoot, ("at", f"n{i + 1}", "x"), f"n{i + 1}") for i in range(2)
        ]
        for r in rs:
            await r.wait_ready()
        for rnd in range(5):
            async with anyio.create_task_group() as tg:
                for i, r in enumerate(rs):
                    data = {"name": f"r{rnd}n{i}", "hold": 0.5}
                    tg.start_soon(lambda r=r, d=data: add_job(r, d["name"], "hold", data=d, limits={"bus": 1}))
            await wait_for(lambda n=2 * rnd + 2: len(LOG) == n and all(x[3] is not None for x in LOG), timeout=60)
        assert max_at_once(LOG) == 1
        assert sorted(x[0] for x in LOG) == sorted(f"r{rnd}n{i}" for rnd in range(5) for i in range(2))


# ---- the claim protocol's decisions, without a server ----------------------


class _Host:
    """A stand-in runner root for `LimitChannel` (nothing is sent or written)."""

    client = None
    node = "me"
    kind = "any"
    config = RunnerConfig(**FAST)
    group_keys = GroupKeys()
    state_prefix = P(":.distkv.state")


class _Run:
    def __init__(self):
        self.stopped = None
        self.claim = type("C", (), {"stop_requested": False})()

    def stop(self, reason, restart=False):
        self.stopped = (reason, restart)


def _key_won_by(winner, loser):
    """A slot key for which ``winner`` has the better rendezvous score."""
    for i in range(1000):
        key = slot_key(f"bus{i}", 0)
        if score(key, winner) > score(key, loser):
            return key
    raise AssertionError("no such key")


async def test_claim_decisions():
    ch = LimitChannel(_Host(), "g")
    me = ch.member
    assert me == "me:any" and ch.group.topic == ("distkv_code", "run", "limit", "g")
    # a claim with a better score beats ours; one with a worse score does not
    better = _key_won_by("other:all", me)
    worse = _key_won_by(me, "other:all")
    for key, beaten in ((better, True), (worse, False)):
        ch.contests[key] = c = _Contest()
        ch._on_claim("claim", key, "other:all")
        assert c.beaten is beaten and ch.recent[key][0] == "other:all"
    # "held" beats any claim of ours
    ch.contests[worse] = c = _Contest()
    ch._on_claim("held", worse, "other:all")
    assert c.beaten
    # a slot we hold: a claim is answered "held"; a "held" of a better
    # score stops our run (both hold it: claims crossed unseen)
    run = _Run()
    ch.held[better] = _Hold(run, "x", 0)
    ch._on_claim("claim", better, "other:all")
    assert better in ch.group.sender.outbox.pending["held"]
    ch._on_claim("held", better, "other:all")
    assert run.stopped and run.stopped[1] is True
    # keys that are no slot keys are ignored
    for bad in ("bus", "x#y", "#1"):
        ch._on_claim("claim", bad, "other:all")
        assert bad not in ch.recent


async def test_own_entries_live_only_while_held():
    ch = LimitChannel(_Host(), "g")
    mine = Holder(ch.member, ch.group.instance, "me", "any", "j")
    assert not ch.live("bus", 0, mine)  # not held (an entry left behind): stale
    ch.held[slot_key("bus", 0)] = _Hold(_Run(), "bus", 0)
    assert ch.live("bus", 0, mine)
    assert not ch.live("bus", 0, dataclasses.replace(mine, run="an-earlier-run"))
    assert not ch.live("bus", 1, dataclasses.replace(mine, member="other:any"))  # not heard
    assert set(ch.in_use("bus")) == {0}


# ---- the command line -------------------------------------------------------


def test_run_set_limit_option(node):
    assert node.run("code", "set", "lim.ret", "-s", "-", input="return 1").returncode == 0
    r = node.run(
        "run", "set", "lim.j", "-c", "lim.ret", "-g", "limcli", "-t", "never", "--limit", "bus=2", "--limit", "disk=1"
    )
    assert r.returncode == 0, r.err
    got = json.loads(node.run("run", "get", "lim.j", "-g", "limcli", "-o", "json").out)
    assert got["limits"] == {"bus": 2, "disk": 1}
    # one changes, one goes (NAME=0), the others stay
    assert node.run("run", "set", "lim.j", "-g", "limcli", "--limit", "bus=3", "--limit", "disk=0").returncode == 0
    got = json.loads(node.run("run", "get", "lim.j", "-g", "limcli", "-o", "json").out)
    assert got["limits"] == {"bus": 3}
    for bad in ("bus", "bus=x", "bus=-1", "bus=10001", "b#s=1", "=2"):
        r = node.run("run", "set", "lim.j", "-g", "limcli", "--limit", bad)
        assert r.returncode == 2, (bad, r.err)
    got = json.loads(node.run("run", "get", "lim.j", "-g", "limcli", "-o", "json").out)
    assert got["limits"] == {"bus": 3}  # nothing written
    assert node.run("run", "delete", "lim.j", "-g", "limcli").returncode == 0


async def test_a_holder_cut_off_stops_and_the_slot_moves(autojump_clock, cluster2):
    """A holder whose limit channel goes quiet (its heartbeats stop coming
    back) stops its run before the others count it gone; the waiting run
    on the other runner then takes the slot; never both at once."""
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
        r1, r2 = [
            await _runner(cluster2, stack, i, SingleRunnerRoot, ("at", f"n{i + 1}", "y"), f"n{i + 1}") for i in range(2)
        ]
        for r in (r1, r2):
            await r.wait_ready()
        a = await add_job(r1, "a", "hold", data={"name": "a", "hold": 30.0}, limits={"bus": 1})
        await wait_for(lambda: len(LOG) == 1)
        b = await add_job(r2, "b", "hold", data={"name": "b", "hold": 30.0}, limits={"bus": 1})
        await wait_for(lambda: b.state.waiting == "waiting for limit bus (1/1 in use)")
        ch1 = r1.limits.channels["y"]
        ch1.group.suspend("test: cut off")  # no heartbeats; counts as cut off
        await wait_for(lambda: LOG[0][3] is not None, what="a stops")
        await wait_for(lambda: len(LOG) == 2 and LOG[1][0] == "b", what="b starts")
        ch1.group.suspend(None)
        await wait_for(lambda: a.state.waiting == "waiting for limit bus (1/1 in use)", what="a waits again")
        assert max_at_once(LOG) == 1
        assert a.state.node == "n1" and b.state.waiting is None


async def test_waiting_runs_start_first_come_first_served(autojump_clock, client, cr):
    await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "q"), code=cr, node="n1", cfg=FAST)
    await r.wait_ready()
    await add_job(r, "first", "hold", data={"name": "first", "hold": 3.0}, limits={"bus": 1})
    await wait_for(lambda: len(LOG) == 1)
    order = ["w3", "w1", "w4", "w0", "w2"]  # not the order of their names
    for name in order:
        job = await add_job(r, name, "hold", data={"name": name, "hold": 0.2}, limits={"bus": 1})
        await wait_for(lambda job=job: job.state.waiting is not None, what=f"{name} waits")
    await wait_for(lambda: len(LOG) == 6 and all(x[3] is not None for x in LOG), timeout=60)
    assert [x[0] for x in LOG[1:]] == order
    assert max_at_once(LOG) == 1


@pytest.mark.slow  # about 30 s: three runners, two servers
async def test_across_runners_the_longest_waiting_claims_first(autojump_clock):
    """When a slot frees, the run that has waited longest gets it, whichever
    runner it waits on (twice, with the roles of the two runners swapped,
    so that it is not the rendezvous score that decides)."""
    async with AsyncExitStack() as stack:
        cluster2 = await stack.enter_async_context(in_process_cluster(n=2, tocks=5000))
        c0 = await stack.enter_async_context(cluster2.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("hold", code=HOLD, variables=["name", "hold"], is_async=True)
        rs = [
            await _runner(cluster2, stack, i, SingleRunnerRoot, ("at", f"n{i + 1}", "f"), f"n{i + 1}") for i in range(3)
        ]
        for r in rs:
            await r.wait_ready()
        for rnd, (early, late) in enumerate(((rs[1], rs[2]), (rs[2], rs[1]))):
            n = len(LOG)
            await add_job(rs[0], f"h{rnd}", "hold", data={"name": f"h{rnd}", "hold": 5.0}, limits={"bus": 1})
            await wait_for(lambda n=n: len(LOG) == n + 1)
            for r, name in ((early, f"early{rnd}"), (late, f"late{rnd}")):
                job = await add_job(r, name, "hold", data={"name": name, "hold": 0.5}, limits={"bus": 1})
                await wait_for(lambda job=job: job.state.waiting is not None)
                await anyio.sleep(1.5)
            await wait_for(lambda n=n: len(LOG) == n + 3 and all(x[3] is not None for x in LOG), timeout=60)
            assert [x[0] for x in LOG[n + 1 :]] == [f"early{rnd}", f"late{rnd}"]
        assert max_at_once(LOG) == 1
