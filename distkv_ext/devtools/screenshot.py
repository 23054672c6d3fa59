"""``./dev.sh screenshot [FILE]``: the README's picture of the status page.

Starts a local node, three runner daemons of group ``boiler`` and the
status page, stores a few procedures and jobs (one that keeps running,
one that repeats, one that fails, one on every node), waits until they
have run, and saves what headless Chromium shows (default
``docs/status-page.png``).  Everything is stopped at the end.
"""

import os
import sys
import tempfile

import anyio

from .browser import headless_chromium
from .demo import _Background, _step
from .node import local_cluster

__all__ = ["main"]

PROCS = {
    "heating.pump": (
        "--async",
        "import anyio\nwhile True:\n    print('pump on, speed', speed)\n    await anyio.sleep(1)",
    ),
    "heating.report": ("--sync", "import random\nreturn round(20 + random.random() * 2, 1)"),
    "sensors.poll": ("--async", "import anyio\nprint('polling')\nawait anyio.sleep(2)\nreturn 'ok'"),
    "lab.calibrate": ("--sync", "raise RuntimeError('no calibration gas: valve 3 closed')"),
}
JOBS = [
    ["pump", "-c", "heating.pump", "-e", "speed", "3", "-i", "Boiler pump"],
    ["report", "-c", "heating.report", "-r", "5", "-i", "Room temperature"],
    ["calibrate", "-c", "lab.calibrate"],
    ["poll", "-c", "sensors.poll", "--all-nodes", "-r", "10"],
]


async def _shoot(path, workdir):
    procs = []
    async with local_cluster(1, workdir=os.path.join(workdir, "node")) as cl:
        cfg = cl.client_config
        try:
            for name, (mode, code) in PROCS.items():
                await _step(cfg, ["code", "set", name, mode, "-s", "-"], stdin=code.encode())
            web = _Background("web", os.path.join(workdir, "web.log"))
            await web.start(cfg, ["run", "web", "-g", "boiler", "--bind", "127.0.0.1:0"])
            procs.append(web)
            url = (await web.wait_for("status page: http")).split("status page: ", 1)[1].split()[0]
            for name in ("pi-kitchen", "pi-cellar", "pi-attic"):
                r = _Background(name, os.path.join(workdir, f"{name}.log"))
                await r.start(cfg, ["run", "all", "-g", "boiler", "--name", name])
                procs.append(r)
                await r.wait_for("jobs found:")
            for job in JOBS:
                await _step(cfg, ["run", "set", *job, "-g", "boiler", "-t", "now"])
            await anyio.sleep(8)
            with headless_chromium(1280, 1000) as d:
                d.get(url)
                await anyio.sleep(2)
                d.save_screenshot(path)
            print(f"saved {path}")
        finally:
            with anyio.CancelScope(shield=True):
                for p in procs:
                    await p.stop()


def main(argv=None):
    """Save the screenshot to ``argv[0]`` (default docs/status-page.png)."""
    argv = sys.argv[1:] if argv is None else argv
    path = os.path.abspath(argv[0] if argv else "docs/status-page.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="distkv-code-shot-") as d:
        anyio.run(_shoot, path, d, backend="trio")


if __name__ == "__main__":
    main()
