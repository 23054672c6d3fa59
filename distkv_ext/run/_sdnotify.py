"""systemd notifications (``sd_notify``), without libsystemd.

`notify` sends ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``
to the socket named by ``NOTIFY_SOCKET`` (a path, or ``@name`` for the
abstract namespace); it does nothing when that is not set, so the same
daemon runs under systemd and in a terminal.

Why not the ``sdnotify`` package (0.3.2, the last release in 2017): it
reads neither ``WATCHDOG_USEC`` nor ``WATCHDOG_PID`` (`watchdog_interval`
here), swallows every error silently, and is the same dozen lines;
``systemd-python`` needs libsystemd's headers to build.
"""

import os
import socket
from collections.abc import Mapping

__all__ = ["notify", "watchdog_interval"]


def notify(*items: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``items`` (e.g. ``"READY=1"``) to systemd; True if sent."""
    env = os.environ if env is None else env
    addr = env.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    msg = "\n".join(items).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(msg)
        except OSError:
            return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``),
    or None when systemd wants none (or wants them from another PID)."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
