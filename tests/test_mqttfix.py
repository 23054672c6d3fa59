"""`mqttfix`: DistKV's MQTT backend survives a broker restart.

A real broker process is killed and started again on the same port; the
backend (DistKV's own `distkv.backend.mqtt`, with the repairs applied the
way `distkv_ext.codekit.upstream.apply_server` applies them to servers) must notice, reconnect, keep
its subscription, and finish a publish made while the broker was away.
Real time: the repairs act on moat-mqtt's keep-alive (about 15 s here).
"""

import anyio
import pytest
from distkv.backend.mqtt import connect

from distkv_ext.codekit.upstream import moat_mqtt as mqttfix
from distkv_ext.devtools.broker import broker_process
from distkv_ext.devtools.ports import free_ports
from tests.helpers import wait_for


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
    procs.append(broker_process(port))
    got = []
    async with connect(uri=f"mqtt://127.0.0.1:{port}/") as be:

        async def listen(*, task_status):
            async with be.monitor("dkc", "fix") as stream:
                task_status.started()
                async for msg in stream:
                    got.append(bytes(msg.payload))

        await be._tg.start(listen)
        await be.send("dkc", "fix", payload=b"before")
        await wait_for(lambda: got == [b"before"], timeout=10, step=0.05, what="the first message")

        procs[0].kill()
        procs[0].wait()
        await anyio.sleep(1)
        procs.append(await anyio.to_thread.run_sync(broker_process, port))

        # until the backend notices, these publishes go nowhere; then they
        # wait for the reconnect; none may hang (each is its own task: a
        # hung one would never return); later ones arrive
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
        # nothing delivered twice (those made while disconnected wait for
        # the reconnect and then go out together, in any order)
        after = [int(p[5:]) for p in got[1:]]
        assert len(after) == len(set(after)) and set(after) <= set(range(1, n + 1))


def test_repairs_are_for_the_pinned_release():
    """The repairs replace moat-mqtt code: they apply only to the release
    constraints.txt pins (and warn otherwise)."""
    import importlib.metadata

    with open("constraints.txt", encoding="utf-8") as f:
        pinned = [line.split("==")[1].strip() for line in f if line.lower().startswith("moat-mqtt==")]
    assert pinned == [mqttfix.TARGET] == [importlib.metadata.version("moat-mqtt")]


@pytest.mark.slow  # waits out 1.5 keep-alive periods in real time
@pytest.mark.alone  # timed out in 2 of 4 runs beside other tests in pytest-xdist workers, never alone (cause unknown)
async def test_backend_survives_a_stalled_link(broker_port):
    """The link to the broker stalls (nothing moves, nothing closes): the
    keep-alive ends the connection after 1.5 periods, publishes stuck in
    its full send queue return, and after the link heals all works."""
    from tests.drills.proxy import Proxy

    port, procs = broker_port
    mqttfix.apply()
    procs.append(broker_process(port))
    (cable_port,) = free_ports(1)
    cable = Proxy(port, cable_port)
    got, returned = [], []
    try:
        async with connect(uri=f"mqtt://127.0.0.1:{cable_port}/") as be:

            async def listen(*, task_status):
                async with be.monitor("dkc", "stall") as stream:
                    task_status.started()
                    async for msg in stream:
                        got.append(bytes(msg.payload[:8]))

            async def publish(payload):
                await be.send("dkc", "stall", payload=payload)
                returned.append(payload[:8])

            await be._tg.start(listen)
            await publish(b"before")
            cable.freeze()
            big = b"x" * 200_000  # 40 of them fill the socket buffers and the send queue
            for n in range(40):
                be._tg.start_soon(publish, b"stuck%03d" % n + big)
            await anyio.sleep(20)  # past 1.5 keep-alive periods
            cable.heal()
            with anyio.fail_after(60):
                while b"after" not in got:
                    be._tg.start_soon(publish, b"after")
                    await anyio.sleep(0.5)
                while sum(p.startswith(b"stuck") for p in returned) < 40:
                    await anyio.sleep(0.1)
            be._tg.cancel_scope.cancel()
    finally:
        cable.close()
