"""`mqttfix`: DistKV's MQTT backend survives a broker restart.

A real broker process is killed and started again on the same port; the
backend (DistKV's own `distkv.backend.mqtt`, with the repairs applied the
way `distkv_main` applies them to servers) must notice, reconnect, keep
its subscription, and finish a publish made while the broker was away.
Real time: the repairs act on moat-mqtt's keep-alive (about 15 s here).
"""

import subprocess
import sys

import anyio
import pytest
from distkv.backend.mqtt import connect

from distkv_ext.codekit import mqttfix
from distkv_ext.codekit.ports import free_ports



def _broker(port):
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "tests.drills.broker", str(port)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert proc.stdout.readline().strip() == b"broker ready"
    return proc


@pytest.fixture
def broker_port():
    (port,) = free_ports(1)
    procs = []
    yield port, procs
    for p in procs:
        p.kill()
        p.wait()


async def test_backend_survives_a_broker_restart(broker_port):
    port, procs = broker_port
    mqttfix.apply()
    procs.append(_broker(port))
    got = []
    async with connect(uri=f"mqtt://127.0.0.1:{port}/") as be:

        async def listen(*, task_status):
            async with be.monitor("dkc", "fix") as stream:
                task_status.started()
                async for msg in stream:
                    got.append(bytes(msg.payload))

        await be._tg.start(listen)
        await be.send("dkc", "fix", payload=b"before")
        with anyio.fail_after(10):
            while got != [b"before"]:
                await anyio.sleep(0.05)

        procs[0].kill()
        procs[0].wait()
        await anyio.sleep(1)
        procs.append(await anyio.to_thread.run_sync(_broker, port))

        # the backend has not noticed yet: these publishes go nowhere, but
        # none may hang (each is its own task: a hung one would never
        # return); later ones arrive
        returned = []

        async def publish(n):
            await be.send("dkc", "fix", payload=b"after%d" % n)
            returned.append(n)

        with anyio.fail_after(90):
            n = 0
            while not [p for p in got if p.startswith(b"after")]:
                n += 1
                be._tg.start_soon(publish, n)
                await anyio.sleep(0.2)
            while len(returned) < n:
                await anyio.sleep(0.1)
        be._tg.cancel_scope.cancel()
        # nothing delivered twice, in order; only those sent blind are lost
        after = [int(p[5:]) for p in got[1:]]
        assert after == sorted(set(after)) and after[-1] <= n


def test_repairs_are_for_the_pinned_release():
    """The repairs replace moat-mqtt code: they apply only to the release
    constraints.txt pins (and warn otherwise)."""
    import importlib.metadata

    with open("constraints.txt", encoding="utf-8") as f:
        pinned = [line.split("==")[1].strip() for line in f if line.lower().startswith("moat-mqtt==")]
    assert pinned == [mqttfix.FOR_VERSION] == [importlib.metadata.version("moat-mqtt")]
