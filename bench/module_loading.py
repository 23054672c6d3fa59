"""Stored modules: fetching on demand vs loading everything (DistKV's way).

500 modules stored in 100 chains of 5 (each requires the one before);
one procedure needs the third of a chain, so 3 modules.  Measured: from a
connected client to the first successful call of that procedure, each
trial in a fresh process, the two kinds interleaved in the same run
against the same server (medians):

* ours:     ``CodeRoot.as_handler`` + call: the code handler loads the
            procedure, starts the module handler (a watch of the module
            tree that fetches nothing) and fetches the 3 modules it needs
            (one ``get`` each, and one per package above them, following
            ``requires`` in rounds); the call compiles and runs just those
            3, in requires order.
* built-in: DistKV 0.65's ``ModuleRoot`` + ``CodeRoot`` handlers + call;
            it downloads, compiles and runs all 500 modules as they arrive.

Before the clock, both sides have imported their packages, connected,
and collected the garbage of those imports (``gc.collect()``: else a full
collection it causes, 15-30 ms here, falls into whichever window
allocates next).  Prints medians and the ratio ours / built-in
(goal: <= 0.05).
"""

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import anyio

GOAL = 0.05  # ours / built-in
N_CHAINS, CHAIN = 100, 5
PROC = "bm.proc"
TARGET = "bm.c42.m2"  # requires m1, which requires m0: 3 modules


def module_text(chain, i):
    """~60 lines of ordinary code; the chain link is looked up lazily via
    sys.modules, so that DistKV's load-everything-in-any-order works too."""
    prev = f'sys.modules["bm.c{chain}.m{i - 1}"].f()' if i else "0"
    body = [f'"""Benchmark module {chain}/{i}."""', "import sys", "import math", ""]
    body += [f"LIMIT_{k} = {k * 3 + i}" for k in range(8)]
    body += ["", "", "class Controller:", '    """A small controller."""', ""]
    body += [
        "    def __init__(self, kp=1.0, ki=0.1, kd=0.01):",
        "        self.kp, self.ki, self.kd = kp, ki, kd",
        "        self.acc = 0.0",
        "        self.last = None",
        "",
    ]
    for m in range(6):
        body += [
            f"    def step{m}(self, err, dt=1.0):",
            "        self.acc += err * dt",
            "        d = 0.0 if self.last is None else (err - self.last) / dt",
            "        self.last = err",
            f"        return max(-LIMIT_{m}, min(LIMIT_{m}, self.kp * err + self.ki * self.acc + self.kd * d))",
            "",
        ]
    body += ["", "def f():", f"    return {prev} + 1", ""]
    body += ["", "def norm(v):", "    return math.sqrt(sum(x * x for x in v))", ""]
    return "\n".join(body)


async def populate(cfg_path):
    from distkv.client import open_client
    from moat.util import yload

    from distkv_ext.code import CodeRoot
    from distkv_ext.module import ModuleRoot

    with open(cfg_path, encoding="utf-8") as f:
        cfg = yload(f, attr=True)
    async with open_client(**cfg) as c:
        m = await ModuleRoot.as_handler(c)
        for chain in range(N_CHAINS):
            for i in range(CHAIN):
                req = [f"bm.c{chain}.m{i - 1}"] if i else []
                await m.add(f"bm.c{chain}.m{i}", code=module_text(chain, i), requires=req)
        cr = await CodeRoot.as_handler(c)
        await cr.add(PROC, code=f'import sys\nreturn sys.modules["{TARGET}"].f()', requires=[TARGET])


async def trial(kind, cfg_path):
    from distkv.client import open_client
    from moat.util import P, yload

    # imports are not what is measured: both load theirs before the clock
    if kind == "ours":
        from distkv_ext.code import CodeRoot
    else:
        from distkv.code import CodeRoot, ModuleRoot
    with open(cfg_path, encoding="utf-8") as f:
        cfg = yload(f, attr=True)
    async with open_client(**cfg) as c:
        # the garbage of those imports is theirs too: collected before the
        # clock, so a full collection it causes falls on neither side
        gc.collect()
        gc_time = _gc_timer()
        t0 = time.perf_counter()
        if kind == "ours":
            cr = await CodeRoot.as_handler(c)
            t1 = time.perf_counter()
            res = cr(PROC)
            loaded = sum(1 for n in sys.modules if n.startswith("bm.c"))
        else:
            mr = await ModuleRoot.as_handler(c)
            await mr.wait_loaded()
            cr = await CodeRoot.as_handler(c)
            await cr.wait_loaded()
            t1 = time.perf_counter()
            res = cr(P(PROC))
            loaded = sum(1 for n in sys.modules if n.startswith("bm.c"))
        dt = time.perf_counter() - t0
        assert res == 3, res
    gc_s = gc_time()
    print(json.dumps({"kind": kind, "seconds": dt, "handlers": t1 - t0, "loaded": loaded, "gc": gc_s}))


def _gc_timer():
    """Start timing the garbage collector's runs; returns a function that
    stops and returns the seconds they took (shown beside each side's
    time: what a collection costs falls in whichever window it lands)."""
    spent = [0.0, 0.0]

    def cb(phase, info):
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[1]

    gc.callbacks.append(cb)

    def stop():
        gc.callbacks.remove(cb)
        return spent[0]

    return stop


def _run_trial(kind, cfg):
    res = subprocess.run(
        [sys.executable, "-m", "bench.module_loading", "--trial", kind, cfg],
        capture_output=True,
        check=False,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    if res.returncode:
        raise RuntimeError(f"{kind} trial failed:\n{res.stderr.decode()[-2000:]}")
    return json.loads(res.stdout.decode().strip().splitlines()[-1])


async def _main(runs):
    from distkv_ext.devtools.node import local_cluster

    with tempfile.TemporaryDirectory() as d:
        async with local_cluster(1, workdir=d) as cl:
            cfg = cl.client_config
            t0 = time.perf_counter()
            await populate(cfg)
            print(f"stored {N_CHAINS * CHAIN} modules + 1 procedure in {time.perf_counter() - t0:.1f} s")
            ours, theirs = [], []
            for _ in range(runs):
                ours.append(await anyio.to_thread.run_sync(_run_trial, "ours", cfg))
                theirs.append(await anyio.to_thread.run_sync(_run_trial, "distkv", cfg))
    mo = statistics.median(r["seconds"] for r in ours)
    mt = statistics.median(r["seconds"] for r in theirs)
    print(
        f"first call   ours {mo * 1000:7.1f} ms ({ours[0]['loaded']} modules loaded)"
        f"   built-in {mt * 1000:7.1f} ms ({theirs[0]['loaded']} modules loaded)"
        f"   ratio {mo / mt:5.3f}   (median of {runs}, interleaved)"
    )
    for name, rs in (("ours", ours), ("built-in", theirs)):
        ms = sorted(r["seconds"] * 1000 for r in rs)
        gcs = statistics.median(r["gc"] * 1000 for r in rs)
        print(f"  {name:9} runs (ms): {', '.join(f'{t:.1f}' for t in ms)}; of that in gc (median): {gcs:.1f}")
    print(f"goal: ratio <= {GOAL} -> {'met' if mo / mt <= GOAL else 'MISSED'}")


def main(runs=7):
    print(f"Module loading: {N_CHAINS * CHAIN} stored modules, a procedure needing 3")
    anyio.run(_main, runs, backend="trio")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--trial":
        anyio.run(trial, sys.argv[2], sys.argv[3], backend="trio")
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
