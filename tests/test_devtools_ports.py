"""`distkv_ext.devtools.ports.free_ports`: ports no other process is
handed meanwhile (see its module doc)."""

import socket

import pytest

from distkv_ext.devtools import ports


def _ephemeral():
    with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
        low, high = map(int, f.read().split())
    return low, high


def test_the_ports_are_distinct_free_and_outside_the_kernels_range():
    got = ports.free_ports(5)
    assert len(set(got)) == 5
    low, high = _ephemeral()
    for port in got:
        assert ports.RANGE[0] <= port < ports.RANGE[1]
        assert not low <= port <= high
        with socket.create_server(("127.0.0.1", port)):  # free: a server can listen on it
            pass


def test_a_taken_port_is_not_given(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        monkeypatch.setattr(ports, "RANGE", (port, port + 1))
        with pytest.raises(OSError, match=f"no 1 free ports in {port}-{port}"):
            ports.free_ports(1)
