"""Fixtures and helpers for distkv-code's tests.

* `cluster`: DistKV's own in-process harness (a real moat-mqtt broker and
  real `distkv.server.Server` instances inside the test process).
* `node` (module-scoped): a broker and two real ``distkv server``
  processes started by ``distkv-code-node``, for tests that drive the
  real ``distkv`` command.
"""

import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from distkv.mock.mqtt import stdtest

BIN = os.path.dirname(sys.executable)
DISTKV = os.path.join(BIN, "distkv")


@asynccontextmanager
async def cluster(n=1, **kw):
    """An in-process DistKV cluster of ``n`` servers."""
    async with stdtest(n=n, args={"init": 123}, tocks=1000, **kw) as st:
        yield st


@dataclass
class Node:
    """A running ``distkv-code-node``: its servers' configuration files."""

    configs: list
    workdir: str

    def run(self, *args, server=0, input=None, env=None, config=None, timeout=60):
        """Run ``distkv -c CFG client ARGS`` and return the CompletedProcess."""
        return run_distkv("-c", config or self.configs[server], "client", *args, input=input, env=env, timeout=timeout)


def run_distkv(*args, input=None, env=None, timeout=60):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    if env:
        e.update(env)
    return subprocess.run(
        [DISTKV, *args],
        input=input.encode("utf-8") if isinstance(input, str) else input,
        capture_output=True,
        env=e,
        timeout=timeout,
        check=False,
    )


def start_node(workdir, n=1, timeout=90):
    """Start ``distkv-code-node`` with ``n`` servers; return (process, Node)."""
    ready = os.path.join(workdir, "ready")
    log = open(os.path.join(workdir, "node.out"), "wb")
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


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """Two real DistKV server processes and a broker, for one test module."""
    proc, nd = start_node(str(tmp_path_factory.mktemp("node")), n=2)
    try:
        yield nd
    finally:
        stop_node(proc)
