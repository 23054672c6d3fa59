"""How precisely a calendar job starts: a 5-second cron job (``* * * *
* */5``: croniter's sixth field is the seconds) run by our runner daemon
(``distkv client run all``, a real process), against DistKV 0.65's
built-in runner (bench/distkv_runner.py) started by targets at the same
calendar seconds (the bench writes each next target, a multiple of 5 s,
once the last run has recorded itself: DistKV has no calendar).

Measured from inside the procedure: ``time.time()`` minus the slot (ours:
the state's ``for_target``; built-in: the target, passed in its data), in ms;
median and max over RUNS runs each, both in the same run (one DistKV
server, loopback).

``./dev.sh bench cron`` (100 runs: about 9 minutes);
``python -m bench.cron --runs 20`` for a shorter one.
"""

import argparse
import math
import statistics
import sys
import tempfile
import time

import anyio
from moat.util import P, yload

from bench.runner import Runners
from distkv_ext.devtools.node import local_cluster

RUNS = 100
PERIOD = 5

# ``slot``: given by the bench to DistKV's runner (its job code has no
# ``_entry``); ours: the slot the run is for, from the job's state
RECORD = """
import time
now = time.time()
slot = slot or _entry.state.for_target
await _client.set(_P(":.bench.cron") + (kind, str(int(slot))), value=now - slot)
"""


async def _late(c, kind):
    res = []
    try:
        async for r in c.get_tree(P(":.bench.cron") + (kind,)):
            if "value" in r:
                res.append(r.value)
    except Exception:
        pass
    return res


async def ours(c, runs):
    """Our daemon runs the cron job; wait for ``runs`` records."""
    await c.set(
        P(":.distkv.run.any.cronours.tick"),
        value={
            "code": P("bench.cron"),
            "data": {"kind": "ours"},
            "cron": f"* * * * * */{PERIOD}",
            "tz": "UTC",
            "written": time.time(),
            "catch_up": "none",
        },
    )
    try:
        with anyio.fail_after(runs * PERIOD + 120):
            while len(await _late(c, "ours")) < runs:
                await anyio.sleep(1)
    except TimeoutError:
        st = await c.get(P(":.distkv.state.any.cronours.tick"))
        raise RuntimeError(f"our runner did not run the job: state {st.get('value')}") from None
    await c.delete(P(":.distkv.run.any.cronours.tick"))
    return (await _late(c, "ours"))[:runs]


async def builtin(c, runs):
    """DistKV's runner, a target at each 5-second mark (written once the
    last run has recorded itself)."""
    path = P(":.distkv.run.any.cronkv.tick")
    with anyio.fail_after(runs * PERIOD * 3 + 180):
        while len(await _late(c, "distkv")) < runs:
            n = len(await _late(c, "distkv"))
            target = math.ceil((time.time() + 1) / PERIOD) * PERIOD
            await c.set(
                path,
                value={
                    "code": P("bench.cron"),
                    "data": {"kind": "distkv", "slot": target},
                    "target": target,
                    "delay": 1,
                },
            )
            try:
                with anyio.fail_after(60):
                    while len(await _late(c, "distkv")) <= n:
                        await anyio.sleep(0.2)
            except TimeoutError:
                st = await c.get(P(":.distkv.state.state.any.cronkv.tick"))
                errs = [e.value async for e in c.get_tree(P(":.distkv.error")) if "value" in e]
                raise RuntimeError(f"DistKV's runner did not run the job: state {st.get('value')} {errs}") from None
    await c.delete(path)
    return (await _late(c, "distkv"))[:runs]


async def _main(runs):
    from distkv.client import open_client

    from distkv_ext.code import CodeRoot

    with tempfile.TemporaryDirectory() as d:
        async with local_cluster(1, workdir=d) as cl:
            with open(cl.client_config, encoding="utf-8") as f:
                cfg = yload(f, attr=True)
            async with open_client(**cfg) as c:
                cr = await CodeRoot.as_handler(c)
                await cr.add("bench.cron", code=RECORD, variables=["kind", "slot"], default={"slot": 0}, is_async=True)
                mine = Runners("ours", cl, "cronours", 1, d)
                theirs = Runners("distkv", cl, "cronkv", 1, d)
                try:
                    await anyio.sleep(20)  # DistKV's actor group forms in ~16 s
                    res = {}
                    async with anyio.create_task_group() as tg:

                        async def one(name, fn):
                            res[name] = await fn(c, runs)

                        tg.start_soon(one, "ours", ours)
                        tg.start_soon(one, "distkv", builtin)
                finally:
                    mine.stop()
                    theirs.stop()
    return res


def _ms(v):
    return statistics.median(v) * 1000, max(v) * 1000


def main(argv=()):
    ap = argparse.ArgumentParser(prog="python -m bench.cron")
    ap.add_argument("--runs", type=int, default=RUNS, help=f"runs of each (default {RUNS})")
    args = ap.parse_args(list(argv))
    res = anyio.run(_main, args.runs, backend="trio")
    om, ox = _ms(res["ours"])
    dm, dx = _ms(res["distkv"])
    print(f"cron, a {PERIOD}-second job, start after the calendar second, {args.runs} runs each:")
    print(f"  ours (cron)            median {om:7.1f} ms   max {ox:7.1f} ms")
    print(f"  built-in (by targets)  median {dm:7.1f} ms   max {dx:7.1f} ms")
    print(f"  ratio ours/built-in    median {om / dm:7.3f}      max {ox / dx:7.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
