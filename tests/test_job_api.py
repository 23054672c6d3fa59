"""DistKV's job API in stored code (``_self``, ``_cls``, ``_info``), against
in-process DistKV servers: every ``_self`` method and message class,
DistKV's forms and ours.  (DistKV's own feature tests, run by
test_distkv_compat.py, cover ``setup_done``, ``watch`` + ``ChangeMsg``,
``monitor`` + ``MQTTmsg`` and ``timer`` + ``TimerMsg`` once each.)

Jobs report to this module (``import tests.test_job_api as t``): `EV`
collects the events they read, `MARK` what they want to tell.
"""

import time

import distkv.runner
import pytest
from moat.util import P

from distkv_ext.run import SingleRunnerRoot
from tests.helpers import wait_for

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}
EV = []
MARK = {}


@pytest.fixture(autouse=True)
def clear():
    EV.clear()
    MARK.clear()


async def runner(client, cr):
    r = await SingleRunnerRoot.as_handler(client, subpath=("at", "n1", "japi"), code=cr, cfg=FAST)
    await r.wait_ready()
    return r


async def start(r, cr, name, code, *, is_async=True, **kw):
    await cr.add(f"japi.{name}", code=code, is_async=is_async)
    job = r.follow(P(name), create=True)
    job.code = P(f"japi.{name}")
    for k, v in kw.items():
        setattr(job, k, v)
    await job.run_at(time.time())
    return job


async def ended(job):
    await wait_for(lambda: job.state.stopped and not job.state.node, step=0.5, what=f"{job} ended")
    return job.state


async def error_records(client, path):
    """(record, [its entries]) of the run error recorded for ``path``."""
    res = []
    async for e in client.get_tree(P(":.distkv.error")):
        v = e.get("value")
        if isinstance(v, dict) and v.get("subsystem") == "run" and v.get("path") == path:
            sub = [x.value async for x in client.get_tree(P(":.distkv.error") + e.path, min_depth=1)]
            res.append((v, sub))
    return res


async def test_cls_and_globals_are_distkvs(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
import distkv.actor as A, distkv.runner as R, moat.util as U
same = dict(
    TimerMsg=R.TimerMsg, ChangeMsg=R.ChangeMsg, MQTTmsg=R.MQTTmsg, ReadyMsg=R.ReadyMsg,
    RunnerMsg=R.RunnerMsg, ActorState=A.ActorState, BrokenState=A.BrokenState,
    DetachedState=A.DetachedState, PartialState=A.PartialState, CompleteState=A.CompleteState,
    NotGiven=U.NotGiven,
)
return dict(
    names=sorted(_cls),
    same=[n for n, c in same.items() if _cls[n] is c and getattr(_cls, n) is c],
    error=issubclass(_cls.ErrorRecorded, Exception),
    rest=[_P is U.P, _Path is U.Path, _digits is U.digits, _entry.code == _P("japi.globals")],
)
"""
    job = await start(r, cr, "globals", code, is_async=None)
    st = await ended(job)
    res = st.result
    assert set(res["names"]) >= set(distkv.runner._CLASSES) | {"GroupMembers"}
    assert len(res["same"]) == 11 and res["error"] and all(res["rest"]), res


async def test_watch_queues_changes_then_ready(autojump_clock, client, cr):
    await client.set(P("test.japi.w"), value=1)
    r = await runner(client, cr)
    code = """
import tests.test_job_api as t
class Sub(_cls.ChangeMsg):
    pass
await _self.watch(_P("test.japi.w"))
await _self.watch(("test", "japi", "sub"), cls=Sub, max_depth=1, fetch=False)
t.MARK["watching"] = True
async for msg in _info:
    t.EV.append(msg)
    if isinstance(msg, _cls.ChangeMsg) and not hasattr(msg, "value"):
        return "deleted"
"""
    job = await start(r, cr, "watch", code)
    await wait_for(lambda: MARK.get("watching") and len(EV) >= 3)
    await client.set(P("test.japi.sub.a"), value="below")
    await client.set(P("test.japi.w"), value=2)
    await client.delete(P("test.japi.w"))
    st = await ended(job)
    assert st.result == "deleted"
    kinds = [(type(e).__name__, getattr(e, "value", "-")) for e in EV]
    assert kinds == [
        ("ReadyMsg", "-"),
        ("ChangeMsg", 1),
        ("ReadyMsg", "-"),
        ("Sub", "below"),
        ("ChangeMsg", 2),
        ("ChangeMsg", "-"),
    ]
    assert [EV[0].msg, EV[2].msg] == [0, 1]  # watchers with fetch that are up to date
    assert isinstance(EV[1], distkv.runner.ChangeMsg) and isinstance(EV[3], distkv.runner.ChangeMsg)
    assert EV[1].msg.value == 1 and EV[1].path == P("test.japi.w")  # .msg: DistKV's message
    assert EV[3].path == P("test.japi.sub.a")


async def test_monitor_send_and_set_on_a_topic(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
import tests.test_job_api as t
await _self.monitor(_P("test.japi.m"))
await _self.send(_P("test.japi.m"), {"a": 1})
await _self.send(("test", "japi", "m"), raw=b"\\xc1")
await _self.set(_P("test.japi.m:mr"), 5)  # a path marked r: a topic
t.MARK["monitoring"] = True
async for msg in _info:
    if isinstance(msg, _cls.MQTTmsg):
        t.EV.append(msg)
        if getattr(msg, "value", None) == 41:
            return len(t.EV)
"""
    job = await start(r, cr, "mon", code)
    await wait_for(lambda: MARK.get("monitoring") and len(EV) >= 3)
    await client.msg_send(P("test.japi.m"), data=41)
    st = await ended(job)
    assert st.result == 4
    assert [getattr(e, "value", "-") for e in EV] == [{"a": 1}, "-", 5, 41]
    assert EV[1].msg == b"\xc1"  # undecodable: the raw bytes, no value
    assert EV[0].msg is None and EV[0].path == P("test.japi.m")


async def test_timers_fire_restart_and_cancel(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
import anyio, tests.test_job_api as t
t0 = anyio.current_time()
five = await _self.timer(5)
one = await _self.timer(1)
gone = await _self.timer(2)
assert one.cancel()                 # DistKV's sync form
assert not await one.cancel()       # awaitable too (DistKV's Monitor.cancel is async)
await gone.run(3)                   # restarts: fires once, at 3
await _self.timer(0)                # fires never
async for msg in _info:
    if isinstance(msg, _cls.TimerMsg):
        t.EV.append((round(anyio.current_time() - t0), msg.msg is five, msg.msg is gone))
        if msg.msg is five:
            await anyio.sleep(1)
            return True
"""
    job = await start(r, cr, "timer", code)
    await ended(job)
    assert job.state.result is True
    assert EV == [(3, False, True), (5, True, False)]


async def test_set_and_get(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
await _self.set(_P("test.japi.s"), 7)
await _self.set(("test", "japi", "s"), 8)
await _self.set("test.japi.t", "str path")                       # ours: a string in P notation
res = [await _self.get(_P("test.japi.s")), await _self.get("test.japi.t"),
       await _self.get(_P("test.japi.none"), "default")]
try:
    await _self.get(_P("test.japi.none"))
except KeyError:
    res.append("KeyError")
try:
    await _self.set(_P("test.japi.s"), 9, chain=None)            # only if new: it is not
except Exception as exc:
    res.append(type(exc).__name__)
try:
    await _self.get(42)
except RuntimeError:
    res.append("no path")
return res
"""
    job = await start(r, cr, "setget", code)
    st = await ended(job)
    assert list(st.result) == [8, "str path", "default", "KeyError", "ServerError", "no path"]
    assert (await client.get(P("test.japi.s"))).value == 8


async def test_spawn_and_open_context_end_with_the_job(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
import anyio, contextlib, tests.test_job_api as t
async def bg(name):
    t.MARK[name] = "running"
    try:
        await anyio.sleep(1000)
    finally:
        t.MARK[name] = "ended"
@contextlib.asynccontextmanager
async def ctx():
    t.MARK["ctx"] = "open"
    try:
        yield 5
    finally:
        t.MARK["ctx"] = "closed by " + ("ended" if t.MARK["bg"] == "ended" else "running")
await _self.spawn(bg, "bg")
sc = await _self.spawn(bg, name="early")
sc.cancel()
await anyio.sleep(1)
t.MARK["at end"] = dict(t.MARK)
return await _self.open_context(ctx())
"""
    job = await start(r, cr, "spawn", code)
    st = await ended(job)
    assert st.result == 5
    assert MARK["at end"] == {"bg": "running", "early": "ended"}
    assert MARK["bg"] == "ended" and MARK["ctx"] == "closed by ended"  # tasks first, then contexts


@pytest.mark.parametrize(
    "call, message, data",
    [
        ('await _self.error("pump jammed", rpm=0)', "pump jammed", {"rpm": 0}),  # ours
        ('await _self.error(message="no rpm", rpm=0)', "no rpm", {"rpm": 0}),  # ours, message by name
        ('await _self.error(message="distkv form", data={"x": 1}, severity=1)', "distkv form", {"x": 1}),
        ('await _self.error(None, message="path None")', "path None", {}),  # DistKV's
    ],
)
async def test_error_forms(autojump_clock, client, cr, call, message, data):
    r = await runner(client, cr)
    job = await start(r, cr, "err", call, delay=1000)
    st = await ended(job)
    assert (st.error, st.backoff) == (message, 1)
    [(rec, entries)] = await error_records(client, job._path)
    assert not rec["resolved"]
    assert [(e.get("message"), e.get("data")) for e in entries] == [(message, data)]


async def test_error_elsewhere_and_errorrecorded_raised(autojump_clock, client, cr):
    r = await runner(client, cr)
    job = await start(r, cr, "else", 'await _self.error(_P("test.japi.pump"), message="over there")', delay=1000)
    st = await ended(job)
    assert st.error == "over there"
    assert await error_records(client, job._path) == []  # recorded where told, not again here
    [(_, [e])] = await error_records(client, P("test.japi.pump"))
    assert e["message"] == "over there"
    for n, code in enumerate(
        ['raise _cls.ErrorRecorded("mine")', "from distkv.runner import ErrorRecorded\nraise ErrorRecorded()"]
    ):
        job = await start(r, cr, f"raised{n}", code, delay=1000)
        st = await ended(job)
        assert (st.error, st.backoff) == (["mine", "error recorded by the job"][n], 1)
        assert await error_records(client, job._path) == []


async def test_setup_done_resolves_and_comments(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
import anyio, tests.test_job_api as t
t.MARK["runs"] = t.MARK.get("runs", 0) + 1
if t.MARK["runs"] == 1:
    await _self.error("first run fails")
await _self.setup_done(comment="recovered", data={"run": 2})
t.MARK["backoff"] = _entry.state.backoff
return "ok"
"""
    job = await start(r, cr, "setup", code, delay=1, backoff=1)
    await wait_for(lambda: job.state.result == "ok")
    assert MARK["backoff"] == 0
    [(rec, [e])] = await error_records(client, job._path)
    assert rec["resolved"] and rec["subsystem"] == "run"
    assert (e["message"], e["comment"], e["data"]) == ("first run fails", "recovered", {"run": 2})


async def test_cancel_ends_the_code_as_a_success(autojump_clock, client, cr):
    r = await runner(client, cr)
    job = await start(r, cr, "cancel", "import anyio\n_self.cancel()\nawait anyio.sleep(100)\nreturn 1")
    st = await ended(job)
    assert (st.result, st.backoff, st.error) == (None, 0, None)


async def test_info_overflow_queues_none_then_drops(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
import anyio
for i in range(30):
    await _self.timer(0.01 * (i + 1))
await anyio.sleep(1)
got = []
while not _info.empty():
    got.append(type(_info.get_nowait()).__name__)
return got, _self.dropped
"""
    job = await start(r, cr, "overflow", code)
    st = await ended(job)
    got, dropped = st.result
    assert list(got) == ["ReadyMsg"] + ["TimerMsg"] * 18 + ["NoneType"]  # QLEN 20: the last slot says "overflow"
    assert dropped == 12


async def test_raw_monitor_topic_watch_and_cancel(autojump_clock, client, cr):
    r = await runner(client, cr)
    code = """
import anyio, tests.test_job_api as t
raw = await _self.monitor(_P("test.japi.raw"), raw=True)
topic = await _self.watch(_P("test.japi.rw:mr"))        # marked r: a topic, as in DistKV
entry = await _self.watch(_P("test.japi.cw"), fetch=False)
t.MARK["ready"] = True
async for msg in _info:
    if isinstance(msg, _cls.RunnerMsg) and not isinstance(msg, _cls.ReadyMsg):
        t.EV.append((type(msg).__name__, msg.msg, getattr(msg, "value", "-"), str(msg.path)))
    if len(t.EV) == 3:
        assert entry.cancel() and raw.cancel() and topic.cancel()
        t.MARK["cancelled"] = True
        await anyio.sleep(5)
        return len(t.EV)
"""
    job = await start(r, cr, "raw", code)
    await wait_for(lambda: MARK.get("ready"))
    await client.msg_send(P("test.japi.raw"), data=1)
    await client.msg_send(P("test.japi.rw"), data=2)
    await client.set(P("test.japi.cw"), value=3)
    await wait_for(lambda: MARK.get("cancelled"))
    await client.msg_send(P("test.japi.raw"), data=4)
    await client.set(P("test.japi.cw"), value=5)
    st = await ended(job)
    assert st.result == 3  # nothing after cancel()
    got = sorted(EV, key=lambda e: e[3])
    assert [(n, v, p) for n, _, v, p in got] == [
        ("ChangeMsg", 3, "test.japi.cw"),
        ("MQTTmsg", "-", "test.japi.raw"),  # raw: bytes in .msg, no value
        ("ChangeMsg", 2, "test.japi.rw"),
    ]
    assert got[1][1] == b"\x01"
