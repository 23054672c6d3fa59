"""Deploying N procedures: one ``code deploy`` vs N built-in ``code set``.

Against one local server, same run: ours deploys a directory of N
procedure files with one ``distkv client code deploy DIR`` (process
start-up included); DistKV's built-in ``distkv client code`` stores the
same N files with one ``code PATH set`` each (through the repaired
``distkv client``).  Also timed: a second deploy with nothing to do, and
a deploy that changes all N (each replaced version goes to the history).
Goal: ours >= 50x faster.

``python -m bench.deploy [N]`` (default 200).
"""

import os
import sys
import tempfile

import anyio

from bench.cli_startup import _time as _run  # one timed run of the distkv command
from distkv_ext.devtools.node import local_cluster


def _write_tree(root, n, version):
    for i in range(n):
        d = os.path.join(root, "procs", "bench", f"g{i % 10}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"p{i}.py"), "w", encoding="utf-8") as f:
            f.write(f"# distkv:\n#   vars: [x]\n#   default: {{x: {i}}}\n\ny = x * {version}\nreturn y + {i}\n")


def _files(root):
    for dirpath, _, files in os.walk(os.path.join(root, "procs")):
        for f in sorted(files):
            full = os.path.join(dirpath, f)
            yield ".".join(os.path.relpath(full[:-3], os.path.join(root, "procs")).split(os.sep)), full


async def _main(n):
    with tempfile.TemporaryDirectory() as d:
        tree = os.path.join(d, "tree")
        _write_tree(tree, n, 1)
        async with local_cluster(1, workdir=os.path.join(d, "node")) as cl:
            base = ["-c", cl.client_config, "client", "code"]

            def ours():
                return _run(base + ["deploy", tree])

            def theirs():
                t = 0.0
                for name, full in _files(tree):
                    t += _run(["--builtin", *base, "theirs." + name, "set", "-s", full])
                return t

            t_ours = await anyio.to_thread.run_sync(ours)
            t_noop = await anyio.to_thread.run_sync(ours)
            _write_tree(tree, n, 2)
            t_change = await anyio.to_thread.run_sync(ours)
            t_theirs = await anyio.to_thread.run_sync(theirs)
    return t_ours, t_noop, t_change, t_theirs


def main(n=200):
    print(f"Deploy {n} procedures (python {sys.version.split()[0]})")
    t_ours, t_noop, t_change, t_theirs = anyio.run(_main, n, backend="trio")
    ratio = t_theirs / t_ours
    print(f"ours: one 'code deploy'           {t_ours:7.2f} s  ({n / t_ours:6.1f} procedures/s)")
    print(f"ours: deploy again, no changes    {t_noop:7.2f} s")
    print(f"ours: deploy changing all {n:<4}    {t_change:7.2f} s  (history kept)")
    print(f"built-in: {n} x 'code set'        {t_theirs:7.2f} s  ({n / t_theirs:6.1f} procedures/s)")
    print(f"speed-up {ratio:.0f}x   goal: >= 50x -> {'met' if ratio >= 50 else 'MISSED'}")
    return ratio


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
