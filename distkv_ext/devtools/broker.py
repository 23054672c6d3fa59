"""A moat-mqtt broker on a loopback port, in this process or its own.

``python -m distkv_ext.devtools.broker PORT`` runs one until it is
killed; it prints ``broker ready`` once it listens.  `broker_process`
starts that command and waits for the line.

Why a process of its own: a broker that shares a Python process with
other busy work shares its interpreter lock and its event loop too.
The scale benchmark parses the runners' logs (hundreds of thousands of
lines) in worker threads, just before it kills a runner and every second
after; a broker in that process is not what a deployment has, which runs
its broker as its own process (mosquitto, or moat-mqtt's).  So do the
benchmark and the drills.
"""

import os
import select
import subprocess
import sys
import time

import anyio
from moat.mqtt.broker import create_broker

__all__ = ["broker_config", "broker_process", "first_line", "serve"]

READY = b"broker ready"


def broker_config(port):
    """moat-mqtt's configuration of a broker on 127.0.0.1:``port``,
    anonymous, with the short disconnect delay the tests rely on."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "timeout-disconnect-delay": 2,
        "auth": {"allow-anonymous": True, "password-file": None},
    }


async def serve(port, *, task_status=anyio.TASK_STATUS_IGNORED):
    """Run a broker on 127.0.0.1:``port`` until cancelled."""
    async with create_broker(config=broker_config(port)):
        task_status.started()
        await anyio.sleep_forever()


def broker_process(port, log=None, timeout=60.0):
    """Start ``python -m distkv_ext.devtools.broker PORT``; return the
    `subprocess.Popen` once the broker listens.  Its output after the
    ready line goes to ``log`` (a path; default: discarded).  The caller
    kills it.  Raises RuntimeError if it exits, or is not ready within
    ``timeout`` seconds (then it is killed)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "distkv_ext.devtools.broker", str(port)],
            stdout=subprocess.PIPE,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
    finally:
        if log:
            out.close()
    line = first_line(proc.stdout, timeout)
    proc.stdout.close()
    if line is None:
        line = b"(no whole line within %g s)" % timeout
    if line != READY:
        proc.kill()
        proc.wait()
        where = f"; see {log}" if log else ""
        raise RuntimeError(f"the broker on port {port} did not start (exit {proc.poll()}): {line[-200:]!r}{where}")
    return proc


def first_line(pipe, timeout):
    """The first line that ``pipe`` (a readable pipe) gives within
    ``timeout`` seconds, stripped; what came before its end if it closes
    first; None if no whole line came in time (a child that writes half a
    line and hangs does not hang its parent)."""
    fd, buf = pipe.fileno(), b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0].strip()


async def _main(port):
    async with anyio.create_task_group() as tg:
        await tg.start(serve, port)
        print(READY.decode(), flush=True)


if __name__ == "__main__":
    anyio.run(_main, int(sys.argv[1]), backend="trio")
