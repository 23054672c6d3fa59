"""A fleet of real processes for the fault drills.

A moat-mqtt broker in its own process, N ``distkv server`` processes and
``distkv client run all`` daemons, all on loopback.  Servers and daemons
are *supervised* the way systemd's ``Restart=always`` would (restart one
second after any exit; the shipped units wait 5 s), so "without an
operator" means: nothing but the supervisor restarts anything.  Optional
`Proxy` cables sit between each server and the broker and between each
runner and its server, for cut-offs and partitions.

Every job run is recorded by the job itself in a local JSON-lines file
(start, and stop when it ends), so the records survive cut-off servers;
runs of a process killed with -9 end at the kill time.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from moat.util import yformat

from distkv_ext.devtools.node import server_config
from distkv_ext.devtools.ports import free_ports
from tests.drills.proxy import Proxy
from tests.helpers import DISTKV, overlaps, query, wait_until

__all__ = ["Fleet", "RECORDER", "Runs"]

RESTART_DELAY = 1.0

#: An async job that runs until stopped; records start and stop locally.
RECORDER = """
import anyio, json, os, time
me = _entry.root.node
start = time.time()
def note(**kw):
    with open(runlog, "a") as f:
        f.write(json.dumps(dict(job=name, node=me, pid=os.getpid(), start=start, **kw)) + "\\n")
note()
try:
    await anyio.sleep(100000)
finally:
    note(stop=time.time())
"""


class Supervised:
    """A process restarted RESTART_DELAY after it exits, until `stop`."""

    def __init__(self, name, args, log, env=None):
        self.name, self.args, self.log, self.env = name, args, log, env
        self.proc = None
        self.exits = []  # (time, exit code)
        self.kills = []  # (time, pid) of kill -9 by the drill
        self.starts = 0
        self.supervise = True
        self.down_for = None  # seconds the next restart waits (RESTART_DELAY if None)
        self._start()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _start(self):
        e = dict(os.environ)
        e.update(self.env or {})
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e
            )
        self.starts += 1

    def _watch(self):
        while self.supervise:
            p = self.proc
            rc = p.poll()
            if rc is None:
                time.sleep(0.1)
                continue
            self.exits.append((time.time(), rc))
            down, self.down_for = self.down_for, None
            time.sleep(RESTART_DELAY if down is None else down)
            if self.supervise:
                self._start()

    @property
    def pid(self):
        return self.proc.pid

    def kill9(self, down=None):
        """kill -9 the process; it is restarted after ``down`` seconds
        (default RESTART_DELAY)."""
        self.down_for = down
        t, pid = time.time(), self.proc.pid
        self.kills.append((t, pid))
        self.proc.send_signal(signal.SIGKILL)
        return t, pid

    def stop(self, sig=signal.SIGTERM, timeout=15):
        self.supervise = False
        self._thread.join(2)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def rss_kb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None


class Fleet:
    """Broker, servers and runner daemons for one drill (see module doc)."""

    def __init__(self, workdir, n_servers=3, proxies=False):
        self.dir = workdir
        self.n = n_servers
        self.runlog = os.path.join(workdir, "runs.jsonl")
        ports = free_ports(2 + 3 * n_servers)
        self.broker_port = ports[0]
        self.server_ports = ports[2 : 2 + n_servers]
        self.broker_proxy_ports = ports[2 + n_servers : 2 + 2 * n_servers]
        self.client_proxy_ports = ports[2 + 2 * n_servers :]
        self.proxies = proxies
        self.broker = None
        self.servers = []
        self.runners = {}
        self.broker_cables = []  # Proxy between server i and the broker
        self.client_cables = []  # Proxy between clients of server i and it
        self.configs = []  # for servers
        self.client_configs = []  # for runners and tools (through the cable)

    # ---- start / stop -------------------------------------------------
    def start(self):
        self.start_broker()
        names = [f"s{i + 1}" for i in range(self.n)]
        hostmap = {nm: ("127.0.0.1", p) for nm, p in zip(names, self.server_ports, strict=False)}
        for i, nm in enumerate(names):
            bport = self.broker_port
            cport = self.server_ports[i]
            if self.proxies:
                self.broker_cables.append(Proxy(self.broker_port, self.broker_proxy_ports[i]))
                self.client_cables.append(Proxy(self.server_ports[i], self.client_proxy_ports[i]))
                bport, cport = self.broker_proxy_ports[i], self.client_proxy_ports[i]
            cfg = server_config(nm, self.server_ports[i], f"mqtt://127.0.0.1:{bport}/", hostmap)
            path = os.path.join(self.dir, f"{nm}.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(yformat(cfg))
            self.configs.append(path)
            ccfg = dict(cfg, connect=dict(cfg["connect"], port=cport))
            cpath = os.path.join(self.dir, f"{nm}.client.yaml")
            with open(cpath, "w", encoding="utf-8") as f:
                f.write(yformat(ccfg))
            self.client_configs.append(cpath)
        for i, nm in enumerate(names):
            join = [sys.executable, "-m", "distkv_ext.codekit.upstream.main", "-c", self.configs[i], "server", nm]
            srv = Supervised(nm, join[:-1] + ["-I", "-", nm] if i == 0 else join, os.path.join(self.dir, f"{nm}.log"))
            srv.args = join  # a restart joins the others, never re-initialises
            self.servers.append(srv)
            self.wait_server(i)
        return self

    def start_broker(self):
        self.broker = Supervised(
            "broker",
            [sys.executable, "-m", "distkv_ext.devtools.broker", str(self.broker_port)],
            os.path.join(self.dir, "broker.log"),
        )
        wait_until(lambda: _port_open(self.broker_port), timeout=30, what="the broker")

    def wait_server(self, i, timeout=90):
        from moat.util import P

        def ready():
            try:
                query(self.configs[i], lambda c: c.get(P("drill.ping")))
                return True
            except Exception:
                return False

        wait_until(ready, timeout=timeout, step=0.5, what=f"server s{i + 1}")

    def runner(self, name, server, *args, wrap=(), env=None):
        """Start (supervised) ``distkv client run all NAME ARGS`` on server
        index ``server``; ``wrap``: a command that runs it (``faketime``),
        ``env``: more environment."""
        cmd = [*wrap, DISTKV, "-c", self.client_configs[server], "client", "run", "all", "--name", name, *args]
        r = Supervised(name, cmd, os.path.join(self.dir, f"runner-{name}.log"), env=env)
        r.server = server
        self.runners[name] = r
        return r

    def stop(self):
        for r in self.runners.values():
            r.stop()
        for s in reversed(self.servers):
            s.stop()
        if self.broker:
            self.broker.stop()
        for p in self.broker_cables + self.client_cables:
            p.close()

    # ---- using it -------------------------------------------------------
    def client(self, fn, server=0):
        """``await fn(client)`` on server ``server``; its result."""
        return query(self.configs[server], fn)

    def runs(self):
        return Runs.read(self.runlog, self.kills())

    def kills(self):
        """{pid: time} of every daemon killed with -9 (by the drill or
        with its server's cut)."""
        res = {}
        for r in self.runners.values():
            for t, pid in r.kills:
                res[pid] = t
        return res


def _port_open(port):
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Runs:
    """The run records of a drill: per job, a list of runs (start, end, node, pid)."""

    def __init__(self, runs):
        self.runs = runs  # job -> sorted list of dicts (start, end or None, node, pid)

    @classmethod
    def read(cls, path, kills):
        recs = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue  # a line cut by kill -9
                    key = (r["job"], r["node"], r["pid"], r["start"])
                    cur = recs.setdefault(
                        key, dict(job=r["job"], node=r["node"], pid=r["pid"], start=r["start"], end=None)
                    )
                    if "stop" in r:
                        cur["end"] = r["stop"]
        for r in recs.values():
            if r["end"] is None and r["pid"] in kills:
                r["end"] = kills[r["pid"]]
        runs = {}
        for r in recs.values():
            runs.setdefault(r["job"], []).append(r)
        for v in runs.values():
            v.sort(key=lambda r: r["start"])
        return cls(runs)

    def running(self, job):
        return [r for r in self.runs.get(job, ()) if r["end"] is None]

    def overlaps(self, all_node=()):
        """(job, run a, run b) for every two runs of one job that overlap
        (`tests.helpers.overlaps`).  Jobs in ``all_node`` run on every node:
        only runs on one node count."""
        return overlaps([r for rs in self.runs.values() for r in rs], all_node)

    def started_after(self, job, t, exclude_node=None):
        return [r for r in self.runs.get(job, ()) if r["start"] > t and r["node"] != exclude_node]
