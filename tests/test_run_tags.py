"""Runner tags against in-process DistKV servers: jobs that require or
prefer tags run where they may, say why where they do not, and a member
that dies does not hand a job to members without its tags.  (The same
with real daemons: test_run_placement.py.)"""

import logging
from contextlib import AsyncExitStack

import anyio
from moat.util import P

from distkv_ext.code import CodeRoot
from distkv_ext.run import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from tests import forgery
from tests.helpers import assert_no_overlap, wait_for
from tests.test_run_lib import FAST, FOREVER, LOG, add_job, clear_log, runs_in  # noqa: F401 (fixture)


async def _runner(st, stack, name, tags=(), kind=AnyRunnerRoot, subpath=("any", "g"), **cfg):
    c = await stack.enter_async_context(st.client(0))
    cr = await CodeRoot.as_handler(c)
    return await kind.as_handler(c, subpath=subpath, code=cr, node=name, cfg={**FAST, "tags": list(tags), **cfg})


def running(job):
    return [x[1] for x in LOG if x[0] == job and x[3] is None]


async def edit(job, **kw):
    for k, v in kw.items():
        setattr(job, k, v)
    await job.save()


def die(r):
    """Stop a runner's heartbeats without a word (as kill -9 would)."""
    r.group._stopping = True
    r.group.leave = None


async def test_any_node_job_requiring_a_tag_runs_only_there_and_waits_for_it(autojump_clock, cluster, caplog):
    caplog.set_level(logging.WARNING, "distkv_ext.run._scheduler")
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        r2 = await _runner(cluster, stack, "n2")
        r3 = await _runner(cluster, stack, "n3", tags=["room=kitchen"])
        async with AsyncExitStack() as victim:
            r1 = await _runner(cluster, victim, "n1", tags=["relay"])
            await anyio.sleep(2)
            for i in range(4):
                await add_job(r2, f"hw{i}", "svc", data={"name": f"hw{i}"}, require_tags=["relay"])
            for i in range(6):
                await add_job(r2, f"free{i}", "svc", data={"name": f"free{i}"})
            await wait_for(lambda: len([x for x in LOG if x[3] is None]) == 10)
            assert all(running(f"hw{i}") == ["n1"] for i in range(4))
            free = {running(f"free{i}")[0] for i in range(6)}
            assert free == {"n2", "n3"}  # n1 is full of relay jobs: balance works around them
            die(r1)
        await wait_for(lambda: all(not running(f"hw{i}") for i in range(4)), what="the relay jobs stop with n1")
        st = r2.follow(P("hw0")).state
        await wait_for(lambda: st.placement == "no live member has tag relay", what="the state says why")
        await anyio.sleep(3)
        assert all(not running(f"hw{i}") for i in range(4)), "moved to a member without the tag"
        said = [r.getMessage() for r in caplog.records if "hw0" in r.getMessage()]
        assert said and all("no live member has tag relay" in m for m in said)
        assert len([m for m in said if "n2" in m]) == 1, "said once per runner"
        # it comes back: the jobs run there again
        await _runner(cluster, stack, "n1", tags=["relay"])
        await wait_for(lambda: all(running(f"hw{i}") == ["n1"] for i in range(4)), what="relay jobs back on n1")
        await wait_for(lambda: st.placement is None, what="the state no longer says it is held back")
        assert r3.scheduler.assignment["hw0"] == "n1"
        assert_no_overlap(runs_in(LOG))


async def test_a_preferred_member_takes_the_job_while_it_lives(autojump_clock, cluster):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        r2 = await _runner(cluster, stack, "n2", rebalance=False)
        await _runner(cluster, stack, "n3", rebalance=False)
        async with AsyncExitStack() as victim:
            r1 = await _runner(cluster, victim, "n1", tags=["relay"], rebalance=False)
            await anyio.sleep(2)
            await add_job(r2, "lamp", "svc", data={"name": "lamp"}, prefer_tags=["relay"])
            await wait_for(lambda: running("lamp") == ["n1"])
            die(r1)
        await wait_for(lambda: running("lamp") in (["n2"], ["n3"]), what="the job moves to another member")
        other = running("lamp")[0]
        # the preferred member comes back: without rebalance the job stays where it is
        await _runner(cluster, stack, "n1", tags=["relay"], rebalance=False)
        await wait_for(lambda: r2.scheduler.assignment.get("lamp") == "n1", what="n1 is assigned the job")
        await anyio.sleep(3)
        assert running("lamp") == [other]
        assert_no_overlap(runs_in(LOG))


async def test_a_preferred_member_that_comes_back_gets_the_job_with_rebalance(autojump_clock, cluster):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        r2 = await _runner(cluster, stack, "n2")
        await add_job(r2, "lamp", "svc", data={"name": "lamp"}, prefer_tags=["relay"])
        await wait_for(lambda: running("lamp") == ["n2"])
        await _runner(cluster, stack, "n1", tags=["relay"])
        await wait_for(lambda: running("lamp") == ["n1"], what="the job moves to the preferred member")
        assert_no_overlap(runs_in(LOG))


async def test_all_node_job_runs_only_on_members_with_the_tags(autojump_clock, cluster, caplog):
    caplog.set_level(logging.WARNING, "distkv_ext.run._scheduler")
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        kw = {"kind": AllRunnerRoot, "subpath": ("all", "g")}
        r1 = await _runner(cluster, stack, "n1", tags=["relay", "room=kitchen"], **kw)
        r2 = await _runner(cluster, stack, "n2", tags=["relay"], **kw)
        job = await add_job(r1, "e", "svc", data={"name": "e"}, require_tags=["relay", "room=kitchen"])
        await wait_for(lambda: running("e") == ["n1"])
        st2 = r2.state_for(job.job_path, create=False)
        await wait_for(lambda: st2 is not None and st2.placement == "n2 lacks tag room=kitchen")
        await anyio.sleep(2)
        assert running("e") == ["n1"]
        assert any(
            "n2: not running" in r.getMessage() and "lacks tag room=kitchen" in r.getMessage() for r in caplog.records
        )
        # the job asks for less: it runs on n2 too, and n2's state no longer says it lacks anything
        await edit(job, require_tags=["relay"])
        await wait_for(lambda: sorted(running("e")) == ["n1", "n2"])
        await wait_for(lambda: r2.state_for(job.job_path, create=False).placement is None)
        # and more: n2 stops it
        await edit(job, require_tags=["relay", "room=kitchen"])
        await wait_for(lambda: running("e") == ["n1"], what="n2 stops the job it may no longer run")


async def test_single_node_job_needs_its_nodes_tags(autojump_clock, cluster):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        r = await SingleRunnerRoot.as_handler(c0, subpath=("at", "n2", "g"), code=cr, cfg={**FAST, "tags": ["gpu"]})
        job = await add_job(r, "hw", "svc", data={"name": "hw"}, require_tags=["relay"])
        await wait_for(lambda: job.state.placement == "n2 lacks tag relay")
        ok = await add_job(r, "gpu", "svc", data={"name": "gpu"}, require_tags=["gpu"])
        await wait_for(lambda: running("gpu") == ["n2"])
        assert ok.state.placement is None and not running("hw")


TAG_FORGERIES = [
    ("tags of the wrong type", forgery.hb("ghost", g={"relay": True})),
    ("100000 tags", forgery.hb("ghost", g=["relay"] * 100_000)),
    ("a tag of 1 MB", forgery.hb("ghost", g=["relay=" + "x" * 2**20])),
    ("a tag with a newline", forgery.hb("ghost", g=["relay\n"])),
    ("tags in a claim", {"v": 1, "node": "ghost", "i": "ef" * 6, "q": 9, "claim": ["hw"], "g": ["relay"]}),
    ("a real name, tags of numbers", forgery.hb("n1", g=[1, 2])),
]


async def test_malformed_tags_on_the_channel_are_dropped_and_change_nothing(autojump_clock, cluster):
    async with AsyncExitStack() as stack:
        c0 = await stack.enter_async_context(cluster.client(0))
        cr = await CodeRoot.as_handler(c0)
        await cr.add("svc", code=FOREVER, variables=["name"], is_async=True)
        r1 = await _runner(cluster, stack, "n1", tags=["relay"])
        r2 = await _runner(cluster, stack, "n2")
        await anyio.sleep(2)
        await add_job(r2, "hw", "svc", data={"name": "hw"}, require_tags=["relay"])
        await wait_for(lambda: running("hw") == ["n1"])
        before = [r.group.dropped.get("malformed", 0) for r in (r1, r2)]
        await forgery.send_all(c0, r1.group_topic(), TAG_FORGERIES * 3)
        await anyio.sleep(3)
        after = [r.group.dropped.get("malformed", 0) for r in (r1, r2)]
        assert all(a - b == 3 * len(TAG_FORGERIES) for a, b in zip(after, before, strict=True)), (before, after)
        assert running("hw") == ["n1"] and not r1.lost_event.is_set() and not r2.lost_event.is_set()
        assert r2.group.live_tags() == {"n1": frozenset({"relay"}), "n2": frozenset()}


async def test_observers_and_run_why_hear_the_tags(client):
    from types import SimpleNamespace

    from distkv_ext.run import Group, GroupObserver, group_topic, hear_groups
    from distkv_ext.web._views import members

    topic = group_topic("any", "tg")
    obs = GroupObserver(client, topic, timeout=1.0)
    g1 = Group(client, topic, "n1", ping=0.2, timeout=1.0, tags=("relay", "room=kitchen"))
    g2 = Group(client, topic, "n2", ping=0.2, timeout=1.0)
    async with anyio.create_task_group() as tg:
        await tg.start(obs.run)
        tg.start_soon(g1.run)
        tg.start_soon(g2.run)
        await wait_for(lambda: {m.name for m in obs.members() if m.live} == {"n1", "n2"}, timeout=10)
        assert {m.name: m.tags for m in obs.members()} == {"n1": ("relay", "room=kitchen"), "n2": ()}
        await wait_for(lambda: g2.live_tags() == {"n1": {"relay", "room=kitchen"}, "n2": frozenset()}, timeout=10)
        ref = ("any", "tg", None)
        heard = (await hear_groups(client, {ref: ()}, timeout=1.0, tags={ref: [["relay"]]}))[ref]
        assert heard.tags["n1"] == {"relay", "room=kitchen"} and heard.complete
        # a tag nobody has: it listens the whole timeout, and hears everybody
        heard = (await hear_groups(client, {ref: ()}, timeout=1.0, tags={ref: [["gpu"]]}))[ref]
        assert heard.tags == {"n1": {"relay", "room=kitchen"}, "n2": frozenset()} and heard.listened >= 1.0
        model = SimpleNamespace(states={}, observers={("any", "tg", None): obs})
        assert [(m["name"], m["tags"]) for m in members(model)] == [("n1", ["relay", "room=kitchen"]), ("n2", [])]
        tg.cancel_scope.cancel()
