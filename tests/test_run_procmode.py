"""Process mode: a procedure stored with ``process: true`` runs in a child
process of its runner (`distkv_ext.run._procmode`, `_child`), against
in-process DistKV servers (the child connects to them over TCP)."""

import os
import signal

from moat.util import NotGiven, P

from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._procmode import _children
from tests.helpers import wait_for
from tests.test_run_lib import add_job

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5, "kill_grace": 1.0}


def ended(job, runs=1):
    """The job's run number ``runs`` is over (its state says so)."""
    st = job.state
    return (st.runs or 0) >= runs and st.node is None and st.stopped


def child_pids():
    return {p.pid for p in _children}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def value_at(client, path):
    res = await client.get(P(path))
    return res.get("value") if res else None


async def output_of(client, group, job, run=1):
    res = await client.get(P(f":.distkv.output.any.{group}.{job}.{run}"))
    return res.get("value") if res else None


async def test_result_output_variables_and_own_client(client, cr):
    await client.set(P("pm.in"), value=5)
    code = (
        "import os\n"
        "print('hello', a)\n"
        "import sys; print('to stderr', file=sys.stderr)\n"
        "_log.info('logged %s', b)\n"
        "v = anyio.from_thread.run(_client.get, _P('pm.in'))\n"
        "anyio.from_thread.run(partial(_client.set, _P('pm.out'), value=v.value + a))\n"
        "return {'sum': a + b, 'pid': os.getpid(), 'job': _entry.job}\n"
    )
    await cr.add(
        "pm.hello",
        code="import anyio\nfrom functools import partial\n" + code,
        variables=["a", "b"],
        default={"b": 100},
        process=True,
    )
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pm1"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "hello", "pm.hello", data={"a": 1})
    await wait_for(lambda: ended(job), timeout=60)
    assert job.state.error is None
    res = job.state.result
    assert res["sum"] == 101 and res["pid"] != os.getpid() and res["job"] == job.job_name
    assert (await client.get(P("pm.out"))).value == 6
    out = await wait_for(lambda: output_of(client, "pm1", "hello"), what="output")
    lines = [(s, t) for _, s, t in out["lines"]]
    assert ("stdout", "hello 1") in lines and ("stderr", "to stderr") in lines
    assert any(s == "log" and "logged 100" in t for s, t in lines)


ASYNC_CODE = """
import anyio
await anyio.sleep(0.01)
v = await _client.get(_P("pm.in2"))
print("async", v.value)
try:
    _self.setup_done
except Exception as exc:
    print("no _self:", exc)
return v.value * 2
"""


async def test_async_process_code_and_what_it_lacks(client, cr):
    await client.set(P("pm.in2"), value=21)
    await cr.add("pm.asy", code=ASYNC_CODE, is_async=True, process=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pm2"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "asy", "pm.asy")
    await wait_for(lambda: ended(job), timeout=60)
    assert (job.state.result, job.state.error) == (42, None)
    out = await wait_for(lambda: output_of(client, "pm2", "asy"), what="output")
    lines = [t for _, _, t in out["lines"]]
    assert "async 21" in lines
    assert (
        "no _self: _self is not available in process mode (the job runs in a child process, apart from its runner)"
        in lines
    )


async def test_an_error_in_the_child_is_recorded_with_its_traceback(client, cr):
    await cr.add("pm.bad", code="x = 1\nraise ValueError('broken pump')", process=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pm3"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "bad", "pm.bad", delay=100)
    await wait_for(lambda: ended(job), timeout=60)
    assert job.state.error == "ValueError: broken pump"
    out = await wait_for(lambda: output_of(client, "pm3", "bad"), what="output")
    tb = [t for _, s, t in out["lines"] if s == "traceback"]
    assert tb[0] == "Traceback (most recent call last):" and tb[-1] == "ValueError: broken pump"
    assert any("line 2" in t and "pm.bad" in t for t in tb), tb
    assert not any("_child.py" in t for t in tb), tb  # the runner's plumbing is left out


async def test_a_result_that_cannot_be_stored_is_an_error(client, cr):
    await cr.add("pm.obj", code="return object()", process=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pm4"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "obj", "pm.obj", delay=100)
    await wait_for(lambda: ended(job), timeout=60)
    assert job.state.error.startswith("result cannot be stored: object (<object object at")


SLEEPER = """
import time
print("started", flush=True)
while True:
    time.sleep(0.05)
"""


async def test_a_child_killed_from_outside_is_a_recorded_error(client, cr):
    await cr.add("pm.sleep", code=SLEEPER, process=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pm5"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "sl", "pm.sleep", delay=100)
    (pid,) = await wait_for(child_pids, what="the child")
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: ended(job), timeout=60)
    assert job.state.error == "child process killed by SIGKILL (9) without a result"


STUBBORN = """
import time
with open(marker, "w") as f:
    f.write("running ")
while True:
    try:
        while True:  # (the stop is raised at the loop's jump: inside the try)
            time.sleep(0.05)
    except BaseException as exc:  # the stop (JobStopped): ignored
        with open(marker, "a") as f:
            f.write(type(exc).__name__)
"""


async def test_a_child_that_ignores_its_stop_is_killed_after_kill_grace_and_holds_the_claim(client, cr, tmp_path):
    marker = tmp_path / "stopped"
    await cr.add("pm.stub", code=STUBBORN, variables=["marker"], process=True)
    r = await AnyRunnerRoot.as_handler(
        client, subpath=("any", "pm6"), code=cr, node="n1", cfg={**FAST, "kill_grace": 3.0}
    )
    job = await add_job(r, "stub", "pm.stub", data={"marker": str(marker)})
    (pid,) = await wait_for(child_pids, what="the child")
    await wait_for(lambda: job.state.node == "n1" and marker.exists())
    await job.delete()  # `run delete`: the run stops
    await wait_for(lambda: marker.read_text() != "running ", what="the stop reaching the code")
    assert marker.read_text() == "running JobStopped"
    # it ignored SIGTERM: until SIGKILL ends it, the claim (its state naming n1) holds
    assert alive(pid) and job.state.node == "n1"
    await wait_for(lambda: not alive(pid), timeout=30, what="SIGKILL")
    await wait_for(lambda: not child_pids() and job.state.value in (None, NotGiven), what="the state deleted")


FINALLY = """
import time
open(marker, "w").close()
try:
    while True:
        time.sleep(0.05)
finally:
    with open(marker, "w") as f:
        f.write("ran")
"""


async def test_a_deleted_job_stops_its_child_which_runs_its_finally(client, cr, tmp_path):
    marker = tmp_path / "final"
    await cr.add("pm.fin", code=FINALLY, variables=["marker"], process=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pm7"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "fin", "pm.fin", data={"marker": str(marker)})
    (pid,) = await wait_for(child_pids, what="the child")
    await wait_for(lambda: job.state.node == "n1" and marker.exists())
    await job.delete()
    await wait_for(lambda: not alive(pid), what="the child's end")
    assert marker.read_text() == "ran"
    await wait_for(lambda: job.state.value in (None, NotGiven), what="the state deleted")


async def test_a_code_change_stops_the_old_child_and_starts_a_new_one(client, cr, tmp_path):
    marker = tmp_path / "final"
    await cr.add("pm.edit", code=FINALLY, variables=["marker"], process=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "pm8"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "edit", "pm.edit", data={"marker": str(marker)})
    (pid,) = await wait_for(child_pids, what="the child")
    await wait_for(lambda: job.state.node == "n1" and marker.exists())
    await cr.add("pm.edit", code=FINALLY + "\n# edited", variables=["marker"], process=True)
    await wait_for(lambda: not alive(pid), what="the old child's end")
    assert marker.read_text() == "ran"  # it was stopped (its finally ran), not killed
    await wait_for(lambda: child_pids() - {pid}, what="a new child")
    assert (job.state.runs, job.state.node) == (2, "n1")
