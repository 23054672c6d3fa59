"""Free loopback ports, from a range no other process is handed.

A port that is free now is bound later, by a server or broker that
starts after the call.  A port from the kernel's ephemeral range (what
``bind(0)`` and every outgoing connection get: 32768-60999 on Linux) can
be handed to another process in between, and with several test
processes at once (pytest-xdist) that happens.  So the ports come from
`RANGE`, below the ephemeral range and below `HARNESS` (the ports
`tests/conftest.py` gives DistKV's in-process harness), picked at random
and tried with a bind.
"""

import random
import socket

__all__ = ["free_ports", "RANGE", "HARNESS"]

#: the ports of DistKV's in-process test harness (stop excluded; see
#: tests/conftest.py): 20 per test process, chosen by its pid
HARNESS = (21000, 27000)
#: where `free_ports` takes its ports from (stop excluded)
RANGE = (10000, HARNESS[0])

_pick = random.SystemRandom()  # (a test that seeds `random` must not make every process pick alike)


def free_ports(n, host="127.0.0.1"):
    """Return ``n`` distinct TCP ports of `RANGE` that are free on ``host``
    right now.  Raises OSError if there are not that many."""
    socks = []
    try:
        for _ in range(50 * n):
            if len(socks) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, _pick.randrange(*RANGE)))
            except OSError:
                s.close()
                continue
            socks.append(s)
        else:
            if len(socks) < n:
                raise OSError(f"no {n} free ports in {RANGE[0]}-{RANGE[1] - 1} on {host}")
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
