"""Process mode: a procedure stored with ``process: true`` runs in a child
process of its runner (`distkv_ext.run._procmode`, `_child`), against
in-process DistKV servers (the child connects to them over TCP)."""

import os
import time

from moat.util import P

from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._procmode import _children
from tests.helpers import wait_for

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5, "kill_grace": 1.0}


async def add_job(r, path, code, **kw):
    job = r.follow(P(path), create=True)
    job.code = P(code)
    for k, v in kw.items():
        setattr(job, k, v)
    await job.run_at(time.time())
    return job


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
