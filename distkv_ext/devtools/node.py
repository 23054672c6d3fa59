"""A local DistKV node (or cluster) with its own MQTT broker.

`local_cluster` starts moat-mqtt's broker on a free loopback port (in
this process, or with ``broker_process=True`` in its own: see
`distkv_ext.devtools.broker`), writes a configuration for each server
(with the ``root:`` key that DistKV 0.65's server needs) and starts ``n``
real ``distkv server`` processes (DistKV's own command, via
`distkv_ext.codekit.upstream.main`, which opens the scope that a joining
server needs).  The first server initialises the
store; the others join it.  Everything listens on 127.0.0.1 only.

Used by ``distkv-code-node`` (a node to try things on), by the README's
demo, and by the multi-node tests.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from distkv.client import open_client
from moat.util import P, yformat

from distkv_ext.codekit.upstream.asyncscope import quiet_connect_errors

from .broker import broker_process as start_broker_process
from .broker import serve as serve_broker
from .ports import free_ports

logger = logging.getLogger(__name__)

__all__ = ["LocalCluster", "ServerProc", "local_cluster", "server_config"]

#: Server-to-server sync timing; DistKV's default (10, 2) makes a joining
#: server take ~15 s to come up, this ~5 s.
DEFAULT_PING = {"cycle": 3, "gap": 1}


def server_config(name, port, broker_uri, hostmap, *, ping=None, extra=None):
    """The configuration (a dict) of server ``name``, serving on ``port``."""
    cfg = {
        "root": "distkv",
        "connect": {"host": "127.0.0.1", "port": port, "init_timeout": 10},
        "server": {
            "backend": "mqtt",
            "mqtt": {"uri": broker_uri},
            "bind": [{"host": "127.0.0.1", "port": port}],
            "bind_default": {"host": "127.0.0.1", "port": port},
            "ping": dict(ping or DEFAULT_PING),
        },
        "hostmap": {k: list(v) for k, v in hostmap.items()},
    }
    if extra:
        _merge(cfg, extra)
    return cfg


def _merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _merge(a[k], v)
        else:
            a[k] = v


@dataclass
class ServerProc:
    """One ``distkv server`` process of a `LocalCluster`."""

    name: str
    port: int
    config: str
    log: str
    process: object = None
    starts: int = 0

    @property
    def running(self):
        return self.process is not None and self.process.returncode is None


@dataclass
class LocalCluster:
    """Handle of a running local cluster (see `local_cluster`)."""

    workdir: str
    broker_uri: str
    servers: list = field(default_factory=list)
    #: the broker's `subprocess.Popen` if it runs as a process of its own
    broker: object = None
    tg: object = None

    def config(self, i=0):
        """Path of a configuration file whose clients talk to server ``i``."""
        return self.servers[i].config

    @property
    def client_config(self):
        return self.servers[0].config

    async def start_server(self, i, *, init=False, timeout=60):
        """Start server ``i`` and wait until it serves clients."""
        s = self.servers[i]
        if s.running:
            raise RuntimeError(f"{s.name} is running")
        args = [sys.executable, "-m", "distkv_ext.codekit.upstream.main", "-c", s.config]
        args += ["server"]
        if init:
            args += ["-I", "-"]
        # a joining server finds the others through the broker and the
        # hostmap (naming nodes to fetch from crashes DistKV 0.65)
        args += [s.name]
        logf = open(s.log, "ab")
        try:
            s.process = await anyio.open_process(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        finally:
            logf.close()
        s.starts += 1
        await self.wait_ready(i, timeout=timeout)

    async def wait_ready(self, i, timeout=60):
        """Wait until server ``i`` answers a client request."""

        quiet_connect_errors()
        s = self.servers[i]
        with anyio.fail_after(timeout):
            while True:
                if s.process is not None and s.process.returncode is not None:
                    raise RuntimeError(f"server {s.name} exited ({s.process.returncode}); see {s.log}")
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", s.port)
                except OSError:
                    await anyio.sleep(0.1)
                    continue
                await stream.aclose()
                try:
                    with anyio.fail_after(5):
                        async with open_client(connect={"host": "127.0.0.1", "port": s.port, "init_timeout": 3}) as c:
                            await c.get(P("distkv_code.ping"))
                    return
                except Exception as exc:
                    logger.debug("%s not ready: %r", s.name, exc)
                    await anyio.sleep(0.2)

    async def _signal(self, i, sig, wait=10):
        s = self.servers[i]
        p = s.process
        if p is None or p.returncode is not None:
            return
        p.send_signal(sig)
        with anyio.move_on_after(wait):
            await p.wait()
        if p.returncode is None:
            p.kill()
            await p.wait()

    async def kill_server(self, i):
        """kill -9 server ``i``."""
        await self._signal(i, signal.SIGKILL)

    async def stop_server(self, i):
        """Stop server ``i`` (SIGTERM, then SIGKILL after 10 s)."""
        await self._signal(i, signal.SIGTERM)

    async def stop(self):
        """Stop all servers, last first."""
        for i in reversed(range(len(self.servers))):
            with anyio.CancelScope(shield=True):
                await self.stop_server(i)


@asynccontextmanager
async def local_cluster(n=1, *, workdir=None, ping=None, extra_config=None, keep=False, broker_process=False):
    """Run a broker and ``n`` DistKV servers; yield a `LocalCluster`.

    Args:
      n: number of servers (``s1`` .. ``sN``)
      workdir: where configs and logs go (default: a temporary directory,
        removed afterwards unless ``keep``)
      ping: server sync timing, default `DEFAULT_PING`
      extra_config: merged into every server's configuration (e.g. a
        ``runner:`` section)
      broker_process: run the broker as a process of its own (log:
        ``broker.log`` in ``workdir``), not in this one's event loop; for
        callers that keep this process busy (benchmarks)
    """

    own_dir = workdir is None
    if own_dir:
        workdir = tempfile.mkdtemp(prefix="distkv-node-")
    os.makedirs(workdir, exist_ok=True)
    bport, *ports = free_ports(n + 1)
    uri = f"mqtt://127.0.0.1:{bport}/"
    names = [f"s{i + 1}" for i in range(n)]
    hostmap = {nm: ("127.0.0.1", p) for nm, p in zip(names, ports, strict=True)}
    cl = LocalCluster(workdir=workdir, broker_uri=uri)
    for nm, p in zip(names, ports, strict=True):
        cfg_path = os.path.join(workdir, f"{nm}.yaml")
        with open(cfg_path, "w", encoding="utf-8") as f:
            f.write(yformat(server_config(nm, p, uri, hostmap, ping=ping, extra=extra_config)))
        cl.servers.append(ServerProc(nm, p, cfg_path, os.path.join(workdir, f"{nm}.log")))
    try:
        async with anyio.create_task_group() as tg:
            if broker_process:
                log = os.path.join(workdir, "broker.log")
                cl.broker = await anyio.to_thread.run_sync(start_broker_process, bport, log)
            else:
                await tg.start(serve_broker, bport)
            try:
                await cl.start_server(0, init=True)
                for i in range(1, n):
                    await cl.start_server(i)
                yield cl
            finally:
                await cl.stop()
                if cl.broker is not None:
                    cl.broker.kill()
                    cl.broker.wait()
                tg.cancel_scope.cancel()
    finally:
        if own_dir and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
