"""Fixtures for distkv-code's tests.

``cluster``: DistKV's own in-process harness (a real moat-mqtt broker and
real `distkv.server.Server` instances in the test process).
``node``: a real ``distkv server`` process with its own broker, started
by the launcher, shared by a test module (see `distkv_ext.codekit.node`).
"""

from contextlib import asynccontextmanager

import pytest
from distkv.mock.mqtt import stdtest


@asynccontextmanager
async def cluster(n=1, **kw):
    """An in-process DistKV cluster of ``n`` servers."""
    async with stdtest(n=n, args={"init": 123}, tocks=200, **kw) as st:
        yield st
