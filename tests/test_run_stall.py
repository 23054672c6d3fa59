"""No job can freeze its runner: the watchdog (`_loopwatch`) stops async
code that blocks the event loop, counts the stall and quarantines a job
that stalls runners again and again (``run resume`` lifts it); code
outside the loop is fenced when the loop is stuck; thread jobs wait for
a worker thread visibly; a write that is not confirmed fences the runner."""

import threading
import time

import anyio
import pytest

from distkv_ext.codekit.core.errors import BadArguments, NotFound
from distkv_ext.run import AnyRunnerRoot, explain_job, resume_job
from distkv_ext.run._config import RunnerConfig
from distkv_ext.run._loopwatch import LoopStalled, job_frame, stalled_in
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

# async code that never awaits: the runner's event loop is stuck in it
SPIN = "while True:\n    pass\nawait anyio.sleep(0)"
STUCK: dict[str, threading.Event] = {}


def test_settings_are_checked():
    cfg = RunnerConfig.load({"timeout": 4})
    assert (cfg.stall_seconds, cfg.write_seconds, cfg.threads, cfg.quarantine_after) == (2.0, 2.0, 40, 3)
    assert RunnerConfig.load({"stall_limit": 0.5, "write_timeout": 1}).stall_seconds == 0.5
    with pytest.raises(BadArguments, match=r"^runner.stall_limit \(2\) must be less than runner.timeout \(2\)$"):
        RunnerConfig.load({"stall_limit": 2})
    with pytest.raises(BadArguments, match=r"^runner.write_timeout must be"):
        RunnerConfig.load({"write_timeout": "soon"})
    for name in ("threads", "quarantine_after"):
        with pytest.raises(BadArguments, match=f"^runner.{name} must be a whole number of at least 1, not 0$"):
            RunnerConfig.load({name: 0})


def test_stalls_are_found_in_groups_and_frames():
    assert stalled_in(LoopStalled()) and not stalled_in(ValueError())
    assert stalled_in(BaseExceptionGroup("g", [ValueError(), BaseExceptionGroup("h", [LoopStalled()])]))
    code = compile("import sys\nf = sys._getframe()", "<distkv:proc a.b>", "exec")
    ns: dict = {}
    exec(code, ns)
    assert job_frame(ns["f"]) is ns["f"]
    assert job_frame(ns["f"].f_back) is None  # this test's own frames are no job code


async def test_code_that_blocks_the_loop_is_stopped_then_quarantined(autojump_clock, client, cr):
    await cr.add("spin", code="import anyio\n" + SPIN, is_async=True)
    await cr.add("canary", code="return 'tweet'")
    cfg = dict(FAST, quarantine_after=2)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "q"), code=cr, node="n1", cfg=cfg)
    canary = await add_job(r, "canary", "canary", repeat=1)
    spin = await add_job(r, "spin", "spin", delay=1, backoff=1)
    await wait_for(lambda: spin.state.quarantined is not None, timeout=60, what="quarantine")
    st = spin.state
    assert st.quarantined == "stalled n1, n1" and list(st.stalls) == ["n1", "n1"] and st.runs == 2
    assert st.error == "stalled the runner: its code kept the event loop busy (runner.stall_limit)"
    assert r.watchdog.stalls == 2 and not r.lost_event.is_set()
    why = explain_job(spin.value, st.get_value())
    assert (why["status"], why["verdict"]) == (
        "quarantined",
        "quarantined: stalled n1, n1; `run resume` to try again",
    )
    runs = canary.state.runs
    await wait_for(lambda: canary.state.runs >= runs + 3, what="the canary runs on")  # and not the spinner:
    assert spin.state.runs == 2 and spin.state.node is None

    # the operator lifts it: it starts at once (and stalls again)
    assert await resume_job(client, "any", "q", "spin") == {"": True}
    await wait_for(lambda: spin.state.runs == 3, what="a start after run resume")
    await wait_for(lambda: spin.state.node is None and spin.state.stalls, what="its third stall")
    assert list(spin.state.stalls) == ["n1"] and spin.state.quarantined is None  # a new count
    assert await resume_job(client, "any", "q", "canary") == {"": False}  # not quarantined: nothing written
    with pytest.raises(NotFound):
        await resume_job(client, "any", "q", "no.such.job")


async def test_a_good_run_clears_the_stalls(autojump_clock, client, cr):
    # stalls once (a blocking sleep), then returns: one stall is no quarantine, and it is forgotten
    code = "import time, anyio\nif _entry.state.runs == 1:\n    time.sleep(3)\nawait anyio.sleep(0)\nreturn 'ok'"
    await cr.add("once", code=code, is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "q2"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "once", "once", delay=1, backoff=1)
    await wait_for(lambda: job.state.result == "ok", timeout=60)
    assert job.state.runs == 2 and not job.state.stalls and job.state.quarantined is None


async def test_code_outside_a_stuck_loop_is_fenced(autojump_clock, client, cr):
    """The loop is stuck (not in job code): the code of shared jobs that runs
    in worker threads is stopped before the group can take them over."""
    STUCK["ended"] = ended = threading.Event()
    code = "import time\nimport tests.test_run_stall as t\ntry:\n    while True:\n        time.sleep(0.01)\nfinally:\n    t.STUCK['ended'].set()"
    await cr.add("worker", code=code)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "f"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "w", "worker")
    await wait_for(lambda: job.state.node == "n1")
    await anyio.sleep(0.5)
    assert not ended.is_set()
    time.sleep(2)  # noqa: ASYNC251 (on purpose: the event loop is stuck here, in no job code, 2 s; timeout 1 s)
    assert ended.is_set()  # stopped by the watchdog while the loop was stuck
    await wait_for(lambda: job.state.runs >= 2, what="the job starts again")  # this node holds it again


async def test_a_job_waits_for_a_worker_thread_visibly(autojump_clock, client, cr):
    await cr.add("busy", code="import time\nwhile True:\n    time.sleep(0.01)")
    await cr.add("quick", code="return 7")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "t"), code=cr, node="n1", cfg=dict(FAST, threads=1))
    busy = await add_job(r, "busy", "busy")
    await wait_for(lambda: busy.state.node == "n1")
    quick = await add_job(r, "quick", "quick")
    await wait_for(lambda: quick.state.waiting is not None)
    why = explain_job(quick.value, quick.state.get_value())
    assert why["status"] == "waiting"
    assert why["verdict"].endswith(", waiting for a worker thread (all 1 busy; runner.threads)")
    await busy.delete()
    await wait_for(lambda: quick.state.result == 7)
    assert quick.state.waiting is None


async def test_an_unconfirmed_write_fences_the_runner(autojump_clock, cluster, client, cr):
    await cr.add("forever", code="import anyio\nawait anyio.sleep(10000)", is_async=True)
    cfg = dict(FAST, write_timeout=0.3)
    async with cluster.client() as c1:
        r1 = await AnyRunnerRoot.as_handler(c1, subpath=("any", "w"), code=cr, node="n1", cfg=cfg)
        await r1.wait_ready()
        job = await add_job(r1, "j", "forever")
        await wait_for(lambda: job.state.node == "n1")
        r2 = await AnyRunnerRoot.as_handler(client, subpath=("any", "w"), code=cr, node="n2", cfg=cfg)
        await r2.wait_ready()
        st2 = r2.state_for(job.job_path)
        await wait_for(lambda: st2.node == "n1")

        # from now on n1's server takes no writes from n1 (it stopped answering them)
        real_set = c1.set
        blocked = True

        async def hangs(*a, **kw):
            while blocked:
                await anyio.sleep(0.1)
            return await real_set(*a, **kw)

        c1.set = hangs
        st1 = r1.state_for(job.job_path)
        with pytest.raises(TimeoutError):  # a write on the claim path
            await r1.scheduler.lifecycle.save_confirmed(st1)
        assert r1.group.suspended is not None and not r1.group.connected
        # n1 stops the job (cut off) and, once its heartbeats are missed, n2 takes it over
        await wait_for(lambda: st2.node == "n2", timeout=30, what="n2 takes the job over")
        await anyio.sleep(3)
        assert r1.group.suspended is not None  # no write is confirmed: n1 stays out
        blocked = False
        await wait_for(lambda: r1.group.suspended is None, what="n1 rejoins once its writes are confirmed")
        assert not r1.lost_event.is_set() and st2.node == "n2"


async def test_a_slow_write_while_others_are_confirmed_does_not_fence(autojump_clock, cluster, client, cr):
    """A busy server answers some writes late: that fails the late write
    (its run), not the runner; only a store that confirms nothing fences."""
    await cr.add("forever", code="import anyio\nawait anyio.sleep(10000)", is_async=True)
    cfg = dict(FAST, write_timeout=0.3)
    async with cluster.client() as c1:
        r1 = await AnyRunnerRoot.as_handler(c1, subpath=("any", "w"), code=cr, node="n1", cfg=cfg)
        await r1.wait_ready()
        slow, fine = await add_job(r1, "slow", "forever"), await add_job(r1, "fine", "forever")
        await wait_for(lambda: slow.state.node == "n1" and fine.state.node == "n1")
        st_slow, st_fine = r1.state_for(slow.job_path), r1.state_for(fine.job_path)
        real_set = c1.set

        async def slow_for_one(path, *a, **kw):
            if path == st_slow._path:
                await anyio.sleep(1)
            return await real_set(path, *a, **kw)

        c1.set = slow_for_one
        lifecycle = r1.scheduler.lifecycle

        async def confirmed_meanwhile():
            for _ in range(8):
                await lifecycle.save_confirmed(st_fine)
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as tg:
            tg.start_soon(confirmed_meanwhile)
            with pytest.raises(TimeoutError):
                await lifecycle.save_confirmed(st_slow)
        assert r1.group.suspended is None and r1.group.connected
        # the same late write with nothing else confirmed meanwhile: the store does not answer us
        await anyio.sleep(1)
        with pytest.raises(TimeoutError):
            await lifecycle.save_confirmed(st_slow)
        assert r1.group.suspended is not None
        # the runner's log names the job (it said "<StateEntry object at 0x7f...>")
        assert (
            r1.group.suspended == "fencing: the state of <StateEntry slow node=n1 runs=1> was not written within 0.3 s"
        )
        c1.set = real_set


def _dead(pid):
    """The process has ended (gone, or a zombie its parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return True


async def test_a_process_job_is_ended_when_the_loop_is_stuck(client, cr):
    """Process-mode code of a shared job gets SIGTERM (then SIGKILL) from the
    watchdog while the event loop is stuck, before the group can take it over."""
    from distkv_ext.run._procmode import _children

    await cr.add("sleeper", code="import time\nwhile True:\n    time.sleep(0.05)", process=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pf"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "p", "sleeper")
    (pid,) = await wait_for(lambda: {p.pid for p in _children}, timeout=60, what="the child")
    assert not _dead(pid)
    time.sleep(2)  # noqa: ASYNC251 (on purpose: the event loop is stuck here, in no job code)
    assert _dead(pid)  # ended by the watchdog while the loop was stuck
    await wait_for(lambda: job.state.runs >= 2, timeout=60, what="the job starts again")


STUBBORN = {"go": threading.Event()}


async def test_code_that_ignores_its_stop_keeps_its_claim_and_says_so(autojump_clock, client, cr):
    STUBBORN["go"] = go = threading.Event()
    code = (
        "import time\nimport tests.test_run_stall as t\n"
        "while not t.STUBBORN['go'].is_set():\n"
        "    try:\n        time.sleep(0.01)\n    except BaseException:\n        pass  # swallows its stop\n"
    )
    await cr.add("stubborn", code=code)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "s"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "s", "stubborn")
    await wait_for(lambda: job.state.node == "n1")
    job.data = {"x": 1}
    await job.save()  # an edit: the run must stop (and start again)
    await wait_for(lambda: job.state.waiting is not None, what="the state says it is stopping")
    st = job.state
    assert st.node == "n1" and st.waiting == "stopping (entry changed): its code has not ended yet"
    why = explain_job(job.value, st.get_value())
    assert why["status"] == "stopping" and why["verdict"].endswith(
        ", stopping (entry changed): its code has not ended yet"
    )
    go.set()  # now it ends: the run ends, the job starts again with the new data
    await wait_for(lambda: job.state.runs == 2 and job.state.waiting is None, what="the next run")


async def test_a_stopped_run_whose_writes_are_slow_does_not_say_its_code_runs(autojump_clock, cluster, cr):
    """Its code ended at the stop; the run's last output write took 2.5 s
    (a busy server).  It once noted "its code has not ended yet" meanwhile:
    untrue, and one more write when the store was slowest (seen in the
    states of a scale drill's jobs that never ran)."""
    await cr.add("forever", code="import anyio\nawait anyio.sleep(10000)", is_async=True)
    async with cluster.client() as c1:
        r = await AnyRunnerRoot.as_handler(c1, subpath=("any", "sw"), code=cr, node="n1", cfg=FAST)
        job = await add_job(r, "j", "forever")
        await wait_for(lambda: job.state.node == "n1")
        st = r.state_for(job.job_path)
        noted = []
        real_set = c1.set

        async def slow_but_the_state(path, *a, **kw):
            if path == st._path:
                noted.append((kw.get("value") or {}).get("waiting"))
            else:
                await anyio.sleep(2.5)
            return await real_set(path, *a, **kw)

        c1.set = slow_but_the_state
        job.data = {"x": 1}
        await job.save()  # an edit: the run stops (and starts again)
        await wait_for(lambda: st.runs == 2 and st.node == "n1", timeout=30, what="the next run")
        c1.set = real_set
        assert noted and not [w for w in noted if w and "has not ended" in w], noted
