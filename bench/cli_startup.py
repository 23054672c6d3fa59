"""CLI start-up: ``distkv client code --help`` and one ``code set``.

Ours vs DistKV's built-in ``distkv client code``, against the same local
server, runs interleaved; prints medians and ratios (goal: <= 1.05).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import anyio

from distkv_ext.devtools.node import local_cluster

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = os.path.join(HERE, "distkv_cli.py")


def _time(args):
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, WRAPPER, *args], capture_output=True, check=False)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{args}: exit {res.returncode}: {res.stderr.decode()[-500:]}")
    return dt


def _bench(name, ours, builtin, runs):
    t_ours, t_builtin = [], []
    _time(ours)
    _time(["--builtin", *builtin])  # warm the page cache for both
    for _ in range(runs):
        t_ours.append(_time(ours))
        t_builtin.append(_time(["--builtin", *builtin]))
    mo, mb = statistics.median(t_ours), statistics.median(t_builtin)
    print(
        f"{name:<22} ours {mo * 1000:7.1f} ms   built-in {mb * 1000:7.1f} ms"
        f"   ratio {mo / mb:5.3f}   (median of {runs}, interleaved)"
    )
    return mo / mb


async def _main(runs):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "p.py")
        with open(src, "w", encoding="utf-8") as f:
            f.write("x = 1\nreturn x + 41\n")
        async with local_cluster(1, workdir=os.path.join(d, "node")) as cl:
            cfg = cl.client_config
            base = ["-c", cfg, "client", "code"]
            r1 = await anyio.to_thread.run_sync(_bench, "code --help", base + ["--help"], base + ["--help"], runs)
            r2 = await anyio.to_thread.run_sync(
                _bench,
                "code set",
                base + ["set", "bench.ours.p", "-s", src],
                base + ["bench.theirs.p", "set", "-A", "-s", src],
                runs,
            )
    return r1, r2


def main(runs=15):
    print(f"CLI start-up, {runs} runs each (python {sys.version.split()[0]})")
    r1, r2 = anyio.run(_main, runs, backend="trio")
    print(
        f"goal: ratio <= 1.05   -> --help {'met' if r1 <= 1.05 else 'MISSED'}, set {'met' if r2 <= 1.05 else 'MISSED'}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
