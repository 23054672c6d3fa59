"""Helpers shared by the tests (the fixtures that use them are in conftest.py).

* `run_distkv`: the real ``distkv`` command; a `CliResult` (exit code,
  stdout, stderr; ``.out``/``.err`` decoded).
* `running_node`: a broker and N real ``distkv server`` processes
  (``distkv-code-node``); a `Node` runs ``distkv -c CFG client ...`` on them.
* `in_process_cluster`: DistKV's own in-process harness (``stdtest``).
* `wait_until` (sync, real time) and `wait_for` (async, the event loop's
  clock: virtual time under ``autojump_clock``): poll a predicate.
* `overlaps` / `assert_no_overlap`: no two runs of one job at once
  (all-node jobs: on one node).
* `query`: ``await fn(client)`` on a server from sync code; `Daemon`: one
  ``distkv client run all`` process; `WebServer`: one ``distkv client run
  web`` process on a free port, and `http` to ask it.
"""

import inspect
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import anyio

BIN = os.path.dirname(sys.executable)
DISTKV = os.path.join(BIN, "distkv")

# ---- the real command ---------------------------------------------------


class CliResult(subprocess.CompletedProcess):
    """A finished ``distkv`` command: ``returncode``, ``stdout``/``stderr``
    (bytes), ``out``/``err`` (text) and ``outcome`` (all three)."""

    @property
    def out(self):
        return self.stdout.decode()

    @property
    def err(self):
        return self.stderr.decode()

    @property
    def outcome(self):
        return self.returncode, self.out, self.err


def _env(env):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    if env:
        e.update(env)
    return e


def run_distkv(*args, input=None, env=None, timeout=60):
    """Run ``distkv ARGS`` (``NO_COLOR`` unset unless ``env`` sets it)."""
    r = subprocess.run(
        [DISTKV, *args],
        input=input.encode("utf-8") if isinstance(input, str) else input,
        capture_output=True,
        env=_env(env),
        timeout=timeout,
        check=False,
    )
    return CliResult(r.args, r.returncode, r.stdout, r.stderr)


# ---- real server processes ----------------------------------------------


@dataclass
class Node:
    """A running ``distkv-code-node``: its servers' configuration files."""

    configs: list
    workdir: str

    def run(self, *args, server=0, input=None, env=None, config=None, timeout=60):
        """Run ``distkv -c CFG client ARGS``; a `CliResult`."""
        return run_distkv("-c", config or self.configs[server], "client", *args, input=input, env=env, timeout=timeout)

    def popen(self, *args, server=0, **kw):
        """Start ``distkv -c CFG client ARGS``; the `subprocess.Popen`."""
        return subprocess.Popen([DISTKV, "-c", self.configs[server], "client", *args], **kw)


def start_node(workdir, n=1, timeout=90):
    """Start ``distkv-code-node`` with ``n`` servers; return (process, Node)."""
    os.makedirs(workdir, exist_ok=True)
    ready = os.path.join(workdir, "ready")
    with open(os.path.join(workdir, "node.out"), "wb") as log:
        proc = subprocess.Popen(
            [os.path.join(BIN, "distkv-code-node"), "-n", str(n), "--dir", workdir, "--ready-file", ready],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            with open(os.path.join(workdir, "node.out"), encoding="utf-8", errors="replace") as f:
                raise RuntimeError("distkv-code-node did not start:\n" + f.read())
        time.sleep(0.1)
    configs = [os.path.join(workdir, f"s{i + 1}.yaml") for i in range(n)]
    return proc, Node(configs=configs, workdir=workdir)


def stop_node(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@contextmanager
def running_node(workdir, n=1, timeout=90):
    """A broker and ``n`` real ``distkv server`` processes in ``workdir``."""
    proc, nd = start_node(str(workdir), n=n, timeout=timeout)
    try:
        yield nd
    finally:
        stop_node(proc)


class Daemon:
    """One ``distkv client run all`` process."""

    def __init__(self, config, *args, env=None, log=None):
        self.args = [DISTKV, "-c", config, "client", "run", "all", *args]
        e = dict(os.environ)
        if env:
            e.update(env)
        self.log = log
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e)
        if log:
            out.close()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def term(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def alive(self):
        return self.proc.poll() is None


class WebServer:
    """One ``distkv client run web`` process on a free loopback port;
    ``url`` once it serves (it says so on stderr)."""

    def __init__(self, config, *args, log, env=None, timeout=60):
        e = dict(os.environ)
        if env:
            e.update(env)
        self.log = log
        cmd = [DISTKV, "-c", config, "client", "run", "web", "--bind", "127.0.0.1:0", *args]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e)
        self.url = wait_until(self._url, timeout=timeout, step=0.1, what="the status page")

    def _url(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        m = re.search(r"status page: (http://\S+/)", text)
        if m:
            return m.group(1)
        if self.proc.poll() is not None:
            raise AssertionError(f"run web exited ({self.proc.returncode}):\n{text}")
        return None

    def get(self, path, **kw):
        return http(self.url.rstrip("/") + path, **kw)

    def json(self, path):
        status, _, body = self.get(path)
        assert status == 200, (status, body)
        return json.loads(body)

    def term(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def http(url, method="GET", body=None, headers=None, timeout=30):
    """(status, headers (lower-case names), body text) of one request; no exception for 4xx/5xx."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def query(config, fn):
    """Run ``await fn(client)`` with a client on ``config``; return its result."""
    from distkv.client import open_client
    from moat.util import yload

    with open(config, encoding="utf-8") as f:
        cfg = yload(f, attr=True)

    async def main():
        async with open_client(**cfg) as c:
            return await fn(c)

    return anyio.run(main, backend="trio")


# ---- in-process servers -------------------------------------------------


@asynccontextmanager
async def in_process_cluster(n=1, **kw):
    """An in-process DistKV cluster of ``n`` servers (DistKV's ``stdtest``:
    a real moat-mqtt broker and real servers in this process).  ``tocks``:
    the server events after which the harness says the test did not end
    (default 1000; a soak needs more)."""
    from distkv.mock.mqtt import stdtest

    kw.setdefault("tocks", 1000)
    async with stdtest(n=n, args={"init": 123}, **kw) as st:
        yield st


# ---- waiting ------------------------------------------------------------


def wait_until(pred, timeout=60, step=0.3, what="condition"):
    """Call ``pred()`` every ``step`` seconds until it returns something
    true, and return that; fail after ``timeout`` seconds (real time)."""
    deadline = time.monotonic() + timeout
    while True:
        res = pred()
        if res:
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


async def wait_for(pred, timeout=30, step=0.02, what="condition"):
    """`wait_until` for async tests: ``pred`` may be sync or async; the
    timeout is on the event loop's clock (virtual under ``autojump_clock``)."""
    try:
        with anyio.fail_after(timeout):
            while True:
                res = pred()
                if inspect.isawaitable(res):
                    res = await res
                if res:
                    return res
                await anyio.sleep(step)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# ---- runs of jobs -------------------------------------------------------


def overlaps(runs, all_node=(), ended=None):
    """(job, run, next run) for every two runs of one job that overlap.

    ``runs``: mappings with ``job``, ``node``, ``start`` and ``end`` (or
    ``stop``; missing or None: still running).  Jobs in ``all_node`` run on
    every node: only runs on one node count.  ``ended``: {node: time} at
    which a killed node's unfinished runs count as ended."""
    ended = ended or {}
    by_key = {}
    for r in runs:
        end = r.get("end", r.get("stop"))
        if end is None:
            end = ended.get(r["node"], float("inf"))
        run = dict(r, end=end)
        key = (r["job"], r["node"]) if r["job"] in all_node else r["job"]
        by_key.setdefault(key, []).append(run)
    res = []
    for rs in by_key.values():
        rs.sort(key=lambda r: (r["start"], r["end"]))
        res += [(a["job"], a, b) for a, b in itertools.pairwise(rs) if a["end"] > b["start"]]
    return res


def assert_no_overlap(runs, all_node=(), ended=None):
    found = overlaps(runs, all_node, ended)
    if found:
        job, a, b = found[0]
        raise AssertionError(
            f"{job}: run on {a['node']} ({a['start']:.3f}..{a['end']:.3f}) overlaps run on {b['node']} from {b['start']:.3f}"
        )


# ---- the whole store ------------------------------------------------------


async def dump_store(client):
    """Every entry of the store, through DistKV's public client API (a
    ``get_tree`` of the root, ``.distkv`` included): a list of (path,
    value as DistKV's codec encodes it, chain).  Two equal dumps mean the
    store is byte for byte the same (a rewrite of an equal value changes
    the chain)."""
    from distkv.codec import packer
    from moat.util import Path

    res = []
    async for r in client.get_tree(Path(), nchain=3):
        res.append((str(r.path), packer(r.get("value", None)), packer(r.get("chain", None))))
    return res


def store_dump(config):
    """`dump_store` of the server of ``config`` (from sync code)."""
    return query(config, dump_store)


@contextmanager
def store_unchanged(config):
    """Assert that the store is the same after the block as before it."""
    before = store_dump(config)
    yield before
    after = store_dump(config)
    if after != before:
        old, new = dict((p, (v, c)) for p, v, c in before), dict((p, (v, c)) for p, v, c in after)
        diff = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
        raise AssertionError(f"the store changed: {', '.join(diff[:10])}")
