"""The status page (``distkv client run web``): how fast, how heavy.

DistKV 0.65 has no web page to compare with (its maintainers list one as
a TODO), so this prints our figures alone:

* latency: a job's state is written to the store; when does the browser
  (headless Chromium, the page loaded once, updated by its event stream)
  show it?  50 changes, median and max, with 10 jobs and with 1000;
* page weight: what a browser loads for ``/`` (the page, its CSS, its
  script, its icon), in KB, with 10 jobs and with 1000;
* memory: the server's resident size with 10 jobs and with 1000 jobs
  (each with a state and a run's output of 20 lines).

``./dev.sh bench web`` (about a minute).  Chromium's clock and ours are
the same machine's wall clock.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import anyio
from distkv.client import open_client
from moat.util import P, yload

from distkv_ext.devtools.browser import headless_chromium
from distkv_ext.devtools.node import local_cluster

BIN = os.path.dirname(sys.executable)
CHANGES = 50

#: Records in ``window.__seen`` when a result 'mN' first shows in the jobs table.
OBSERVE = """
window.__seen = {};
new MutationObserver(function (ms) {
  var now = Date.now();
  ms.forEach(function (m) {
    m.addedNodes.forEach(function (n) {
      var t = n.textContent || "", re = /'(m\\d+)'/g, x;
      while ((x = re.exec(t)) !== null) { if (!(x[1] in window.__seen)) window.__seen[x[1]] = now; }
    });
  });
}).observe(document.getElementById("jobs-table"), {childList: true, subtree: true});
"""


def _rss_mb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _weight_kb(url, gzip=False):
    """KB a browser loads for the page (as sent: compressed with ``gzip``)."""
    total = 0
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    for res in ("", "static/style.css", "static/live.js", "static/favicon.svg"):
        req = urllib.request.Request(url + res, headers=headers)
        total += len(urllib.request.urlopen(req, timeout=60).read())
    return total / 1024


def _jobs_shown(url):
    import json

    return len(json.loads(urllib.request.urlopen(url.rstrip("/") + "/api/jobs", timeout=60).read()))


async def _add_jobs(client, group, n, output_lines=0):
    now = time.time()

    async def one(i):
        await client.set(P(":.distkv.run.any") + (group, f"j{i}"), value={"code": P("bench.web"), "data": {}})
        await client.set(
            P(":.distkv.state.any") + (group, f"j{i}"),
            value={"node": None, "started": now - 5, "stopped": now - 4, "runs": 1, "result": i},
        )
        if output_lines:
            lines = [[now - 5 + k / 10, "stdout", f"line {k} of job {i}"] for k in range(output_lines)]
            value = {"node": "r1", "run": 1, "started": now - 5, "stopped": now - 4, "ok": True, "lines": lines}
            await client.set(P(":.distkv.output.any") + (group, f"j{i}", "1"), value=value)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
            if i % 50 == 49:
                await anyio.sleep(0.05)  # DistKV drops a watch 100 changes behind


async def _latency(client, driver, group, n_jobs, base):
    """Seconds from each of `CHANGES` state writes to the browser showing them."""
    driver.execute_script(OBSERVE)
    res = []
    for i in range(CHANGES):
        marker = f"m{base + i}"
        job = f"j{i % n_jobs}"
        t0 = time.time()
        await client.set(
            P(":.distkv.state.any") + (group, job),
            value={"node": None, "started": t0 - 1, "stopped": t0, "runs": base + i, "result": marker},
        )
        with anyio.fail_after(20):
            while True:
                seen = driver.execute_script("return window.__seen[arguments[0]] || null;", marker)
                if seen:
                    break
                await anyio.sleep(0.01)
        res.append(seen / 1000 - t0)
        await anyio.sleep(0.2)
    return res


async def _bench(workdir):
    async with local_cluster(1, workdir=os.path.join(workdir, "node")) as cl:
        cfg = cl.client_config
        with open(cfg, encoding="utf-8") as f:
            client_cfg = yload(f, attr=True)
        log = os.path.join(workdir, "web.log")
        with open(log, "wb") as out:
            web = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is measured)
                [os.path.join(BIN, "distkv"), "-c", cfg, "client", "run", "web", "--bind", "127.0.0.1:0"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            with anyio.fail_after(60):
                while not re.search(r"status page: (http://\S+/)", open(log, encoding="utf-8").read()):
                    await anyio.sleep(0.1)
            url = re.search(r"status page: (http://\S+/)", open(log, encoding="utf-8").read()).group(1)
            async with open_client(**client_cfg) as client:
                await client.set(P(":.distkv.code.proc.bench.web"), value={"code": "return 1", "is_async": None})
                await _add_jobs(client, "lat", 10)
                with anyio.fail_after(60):
                    while _jobs_shown(url) < 10:
                        await anyio.sleep(0.2)
                figures = {"rss 10": _rss_mb(web.pid), "weight 10": _weight_kb(url), "gz 10": _weight_kb(url, True)}
                with headless_chromium() as d:
                    d.get(url)
                    with anyio.fail_after(30):
                        while not d.execute_script("return !document.getElementById('live').hidden"):
                            await anyio.sleep(0.05)
                    figures["lat 10"] = await _latency(client, d, "lat", 10, 0)
                    await _add_jobs(client, "big", 990, output_lines=20)
                    with anyio.fail_after(300):
                        while _jobs_shown(url) < 1000:
                            await anyio.sleep(0.5)
                    await anyio.sleep(2)
                    figures["rss 1000"] = _rss_mb(web.pid)
                    figures["weight 1000"] = _weight_kb(url)
                    figures["gz 1000"] = _weight_kb(url, True)
                    d.get(url)
                    with anyio.fail_after(30):
                        while not d.execute_script("return !document.getElementById('live').hidden"):
                            await anyio.sleep(0.05)
                    figures["lat 1000"] = await _latency(client, d, "lat", 10, 1000)
        finally:
            web.terminate()
            web.wait(30)
    return figures


def main():
    with tempfile.TemporaryDirectory(prefix="distkv-bench-web-") as d:
        f = anyio.run(_bench, d, backend="trio")
    print("status page (distkv client run web); DistKV 0.65 has none to compare with")
    for n in (10, 1000):
        lat = f[f"lat {n}"]
        print(
            f"  {n:4d} jobs: store -> browser median {statistics.median(lat) * 1000:.0f} ms,"
            f" max {max(lat) * 1000:.0f} ms ({len(lat)} changes); page weight {f[f'weight {n}']:.1f} KB"
            f" ({f[f'gz {n}']:.1f} KB sent gzipped); server RSS {f[f'rss {n}']:.1f} MB"
        )


if __name__ == "__main__":
    main()
