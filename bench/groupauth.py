"""What the group key costs: messages per second and failover, with a key vs without.

DistKV's built-in runner has no authenticated group channel to compare
with, so this compares our runners with a group key against our runners
without one, in the same run, interleaved:

* CPU: microseconds to make (number, acknowledge, MAC) and to check
  (unpack, decode, MAC, replay window) one heartbeat (`_groupauth.Channel`);
* messages/s: heartbeats sent through a real DistKV server and checked by
  a receiving channel, end to end (one sender, one receiver, at most
  `WINDOW` on their way: moat-mqtt drops a subscriber that falls behind);
* failover: kill -9 of the runner process that runs a job (3 servers,
  3 runner processes); seconds until the job has started on another node.

``./dev.sh bench groupauth`` (about two minutes).  Prints the figures
and the ratios key / no key.
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import anyio
from moat.util import P, yformat, yload

from bench.runner import RECORD, _add_jobs, _starts
from distkv_ext.devtools.node import local_cluster
from distkv_ext.run import new_group_key
from distkv_ext.run._groupauth import Channel, GroupKeys
from distkv_ext.run._wire import unpack

BIN = os.path.dirname(sys.executable)
TOPIC = ("distkv_code", "run", "any", "benchauth")
ROUNDS = 5
WINDOW = 20


def _keys(keyfile, keyed):
    return GroupKeys.load(keyfile) if keyed else GroupKeys()


def _beat(ch):
    return ch.outgoing("hb", since=time.time(), weight=1.0, load=3, sent=time.monotonic())


def cpu(keyfile, keyed, n=20000):
    """(µs to make one heartbeat, µs to check one)."""
    keys = _keys(keyfile, keyed)
    a = Channel(TOPIC, "a", "a" * 12, keys, 2.0)
    b = Channel(TOPIC, "b", "b" * 12, keys, 2.0)
    for _ in range(5):  # b acknowledges a few of c's: realistic acks in a's messages
        a.incoming(_beat(b))
    t0 = time.perf_counter()
    msgs = [_beat(a) for _ in range(n)]
    t1 = time.perf_counter()
    from distkv.codec import packer

    raw = [packer(m) for m in msgs]
    t2 = time.perf_counter()
    for r in raw:
        assert b.incoming(unpack(r)) is not None
    t3 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t3 - t2) / n * 1e6


async def throughput(cfg, keyfile, keyed, n=2000):
    """Messages per second from one client through the server to a
    checking channel on another client."""
    from distkv.client import open_client

    keys = _keys(keyfile, keyed)
    snd = Channel(TOPIC, "s", "5" * 12, keys, 2.0)
    rcv = Channel(TOPIC, "r", "6" * 12, keys, 2.0)
    got = 0
    done = anyio.Event()
    async with open_client(**cfg) as cs, open_client(**cfg) as cr:

        async def listen(task_status=anyio.TASK_STATUS_IGNORED):
            nonlocal got
            async with cr.msg_monitor(TOPIC, raw=True) as mon:
                task_status.started()
                async for m in mon:
                    if rcv.incoming(unpack(m["raw"])) is not None:
                        got += 1
                        if got >= n:
                            done.set()
                            return

        async with anyio.create_task_group() as tg:
            await tg.start(listen)
            t0 = time.perf_counter()
            for sent in range(n):
                # at most WINDOW messages on their way: the broker drops a
                # subscriber that falls behind ('Overflow. Please resubscribe.')
                while sent - got >= WINDOW:
                    await anyio.sleep(0.001)
                await cs.msg_send(TOPIC, _beat(snd))
            with anyio.fail_after(120):
                await done.wait()
            t1 = time.perf_counter()
            tg.cancel_scope.cancel()
    return n / (t1 - t0)


def _start_runners(cl, keyfile, keyed, workdir, group):
    """Three ``run all`` processes of ``group``, with the key or without."""
    procs = {}
    for i in range(3):
        name = f"r{i + 1}"
        with open(cl.servers[i % len(cl.servers)].config, encoding="utf-8") as f:
            cfg = yload(f)
        cfg["runner"] = {"group_key": keyfile} if keyed else {}
        fn = os.path.join(workdir, f"{group}-{name}.yaml")
        with open(fn, "w", encoding="utf-8") as f:
            f.write(yformat(cfg))
        args = [os.path.join(BIN, "distkv"), "-c", fn, "client", "run", "all", "-g", group, "--name", name]
        with open(os.path.join(workdir, f"{group}-{name}.log"), "wb") as log:
            procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return procs


async def failover(c, cl, keyfile, keyed, workdir, trial):
    group = f"fo{'k' if keyed else 'n'}{trial}"
    procs = _start_runners(cl, keyfile, keyed, workdir, group)
    try:
        job = f"{group}job"
        await anyio.sleep(3)
        await _add_jobs(c, group, [job], time.time())
        with anyio.fail_after(120):
            while True:
                st = await c.get(P(":.distkv.state.any") + (group, job))
                node = st.get("value", {}).get("node")
                if node and await _starts(c, job):
                    break
                await anyio.sleep(0.1)
        before = len(await _starts(c, job))
        procs[node].send_signal(signal.SIGKILL)
        procs[node].wait()
        t0 = time.time()
        with anyio.fail_after(120):
            while len(await _starts(c, job)) <= before:
                await anyio.sleep(0.05)
        return time.time() - t0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


def _line(what, unit, key, nokey, fmt=".1f"):
    k, n = statistics.median(key), statistics.median(nokey)
    return f"{what:<34} key {k:{fmt}} {unit}   no key {n:{fmt}} {unit}   ratio {k / n:5.2f}"


async def _main():
    from distkv.client import open_client

    from distkv_ext.code import CodeRoot

    with tempfile.TemporaryDirectory() as d:
        keyfile = os.path.join(d, "group.key")
        new_group_key(keyfile)
        res = {k: {True: [], False: []} for k in ("make", "check", "rate", "failover")}
        for _ in range(ROUNDS):
            for keyed in (True, False):
                make, check = cpu(keyfile, keyed)
                res["make"][keyed].append(make)
                res["check"][keyed].append(check)
        async with local_cluster(3, workdir=d) as cl:
            with open(cl.client_config, encoding="utf-8") as f:
                cfg = yload(f, attr=True)
            for _ in range(ROUNDS):
                for keyed in (True, False):
                    res["rate"][keyed].append(await throughput(cfg, keyfile, keyed))
            async with open_client(**cfg) as c:
                cr = await CodeRoot.as_handler(c)
                await cr.add("bench.record", code=RECORD, variables=["name"], is_async=True)
                for trial in range(ROUNDS):
                    for keyed in (True, False):
                        res["failover"][keyed].append(await failover(c, cl, keyfile, keyed, d, trial))
        print(f"Group authentication: HMAC-SHA256 group key vs none, median of {ROUNDS}, interleaved")
        print(_line("make one heartbeat (CPU)", "µs", res["make"][True], res["make"][False]))
        print(_line("check one heartbeat (CPU)", "µs", res["check"][True], res["check"][False]))
        print(_line("messages/s through a server", "msg/s", res["rate"][True], res["rate"][False], ".0f"))
        print(_line("any-node failover after kill -9", "s", res["failover"][True], res["failover"][False], ".2f"))
        for k in ("rate", "failover"):
            print(
                f"  {k} trials: key {[round(x, 2) for x in res[k][True]]}  no key {[round(x, 2) for x in res[k][False]]}"
            )


def main():
    anyio.run(_main, backend="trio")


if __name__ == "__main__":
    main()
