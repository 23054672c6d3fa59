"""Whatever a job starts through ``_self`` ends with the job, on every path.

The job below watches an entry, monitors a topic, sets a timer, spawns a
task and enters a context; then the run ends: the code returns, fails,
or is stopped (target cleared), fenced (another node named in its
state), restarted (its code changed), moved (a node joined) or its
runner stops.  Afterwards the server runs no watch or monitor for it
(DistKV's in-process servers are asked which streams they run) and its
task and context have ended.
"""

import time
from contextlib import AsyncExitStack

import pytest
from moat.util import P, Path

from distkv_ext.code import CodeRoot
from distkv_ext.run import AnyRunnerRoot, SingleRunnerRoot
from tests.helpers import wait_for

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}
STARTED = []  # "tag@node" of every run
ENDED = []  # "tag@node ..." of every task and context that ended

JOB = """
import anyio, contextlib, tests.test_job_lifetime as t
me = f"{tag}@{_entry.root.node}"
async def bg():
    try:
        await anyio.sleep(10000)
    finally:
        t.ENDED.append(me + " task")
@contextlib.asynccontextmanager
async def ctx():
    try:
        yield
    finally:
        t.ENDED.append(me + " context")
await _self.watch(_P("test.life") | tag | _entry.root.node)
await _self.monitor(_P("test.lifem") | tag | _entry.root.node)
await _self.timer(10000)
await _self.spawn(bg)
await _self.open_context(ctx())
t.STARTED.append(me)
async for msg in _info:
    if isinstance(msg, _cls.ChangeMsg) and getattr(msg, "value", None) == "return":
        return "returned"
    if isinstance(msg, _cls.ChangeMsg) and getattr(msg, "value", None) == "fail":
        raise RuntimeError("failed as told")
"""


@pytest.fixture(autouse=True)
def clear():
    STARTED.clear()
    ENDED.clear()


def streams(st, tag, node):
    """The watches and monitors DistKV's servers run for the job ``tag`` on ``node``."""
    mine = {P("test.life") | tag | node, P("test.lifem") | tag | node}
    res = []
    for server in st.s:
        for sc in list(server._clients):
            for seq in list(sc.tasks):  # the requests it runs now
                msg = getattr(sc.in_stream.get(seq), "msg", None)
                if msg is None:
                    continue
                where = msg.get("path", msg.get("topic"))
                if where is not None and (where if isinstance(where, Path) else Path.build(where)) in mine:
                    res.append((msg.action, where))
    return res


async def add_job(cr, r, tag, **kw):
    await cr.add("life.job", code=JOB, is_async=True, variables=["tag"])
    job = r.follow(P(tag), create=True)
    job.code = P("life.job")
    job.data = {"tag": tag}
    for k, v in kw.items():
        setattr(job, k, v)
    await job.run_at(time.time())
    return job


async def ends_cleanly(st, tag, node, runs=1):
    me = f"{tag}@{node}"
    await wait_for(lambda: ENDED.count(f"{me} task") == runs and ENDED.count(f"{me} context") == runs, what="ended")
    await wait_for(lambda: not streams(st, tag, node), what="no watch or monitor left on the server")


async def test_the_server_runs_the_jobs_watch_and_monitor(autojump_clock, cluster, client, cr):
    r = await SingleRunnerRoot.as_handler(client, subpath=("at", "n1", "life"), code=cr, cfg=FAST)
    await add_job(cr, r, "probe")
    await wait_for(lambda: "probe@n1" in STARTED)
    assert sorted(a for a, _ in streams(cluster, "probe", "n1")) == ["msg_monitor", "watch"]


@pytest.mark.parametrize("how", ["return", "fail", "stop", "fence", "code change", "runner stop"])
async def test_everything_ends_with_the_job(autojump_clock, cluster, client, cr, how):
    r = await SingleRunnerRoot.as_handler(client, subpath=("at", "n1", "life"), code=cr, cfg=FAST)
    job = await add_job(cr, r, "j", delay=10000)
    await wait_for(lambda: "j@n1" in STARTED)
    assert streams(cluster, "j", "n1")
    if how in ("return", "fail"):
        await client.set(P("test.life.j.n1"), value=how)
    elif how == "stop":
        job.target = None
        await job.save()
    elif how == "fence":
        state = job.state
        state.node = "n9"
        await state.save()
    elif how == "code change":
        await cr.add("life.job", code=JOB + "\n# v2", is_async=True, variables=["tag"])
    else:
        await r.stop()
    if how == "code change":  # it restarts: the old run's are gone, the new run has its own
        await wait_for(lambda: STARTED.count("j@n1") == 2 and ENDED.count("j@n1 task") == 1)
        await wait_for(lambda: len(streams(cluster, "j", "n1")) == 2, what="one watch and one monitor")
        assert ENDED.count("j@n1 context") == 1
    else:
        await ends_cleanly(cluster, "j", "n1")


async def test_everything_ends_when_the_job_moves(autojump_clock, cluster, client, cr):
    async with AsyncExitStack() as stack:
        r1 = await AnyRunnerRoot.as_handler(client, subpath=("any", "life"), code=cr, node="n1", cfg=FAST)
        for tag in ("a", "b"):
            await add_job(cr, r1, tag)
        await wait_for(lambda: {"a@n1", "b@n1"} <= set(STARTED))
        c2 = await stack.enter_async_context(cluster.client())
        cr2 = await CodeRoot.as_handler(c2)
        await AnyRunnerRoot.as_handler(c2, subpath=("any", "life"), code=cr2, node="n2", cfg=FAST)
        # two jobs, two nodes: one of them moves to the newcomer
        await wait_for(lambda: {"a@n2", "b@n2"} & set(STARTED), timeout=60)
        moved = "a" if "a@n2" in STARTED else "b"
        await ends_cleanly(cluster, moved, "n1")
        assert streams(cluster, moved, "n2")
