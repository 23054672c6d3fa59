"""The run-time repairs of upstream packages are for the installed releases.

Each repair replaces code of one release of one package; after a
dependency update it could silently repair nothing, or break.  These
tests fail then, so the repair is looked at again.
"""

import importlib
import re

import pytest

from distkv_ext.codekit import upstream

PINS = {}
with open("constraints.txt", encoding="utf-8") as f:
    for line in f:
        if "==" in line and not line.startswith("#"):
            name, ver = line.strip().split("==")
            PINS[name.lower().replace("_", "-")] = ver


@pytest.mark.parametrize("name", upstream.REPAIRS)
def test_repair_targets_the_pinned_and_installed_release(name):
    mod = importlib.import_module(f"distkv_ext.codekit.upstream.{name}")
    assert mod.PACKAGE in PINS, f"{mod.PACKAGE} is repaired but not pinned in constraints.txt"
    assert mod.TARGET == PINS[mod.PACKAGE], (
        f"{name} repairs {mod.PACKAGE} {mod.TARGET}, constraints.txt pins {PINS[mod.PACKAGE]}"
    )


def test_no_repair_is_for_another_release():
    assert upstream.check_versions() == []


def test_client_repairs_do_not_load_moat_mqtt():
    """Every `distkv client` command applies the client repairs; moat-mqtt
    (~50 ms to import) is for servers only."""
    import subprocess
    import sys

    code = "import sys; from distkv_ext.codekit import upstream; upstream.apply_client(); print('moat.mqtt.client' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_tracebacks_of_nested_exception_groups_format():
    """trio 0.21 replaced TracebackException.format with one that Python
    3.11 cannot call for the parts of an exception group (a TypeError, and
    an INTERNALERROR of pytest when a test fails with such a group)."""
    import traceback

    import trio  # noqa: F401  (its import installs the broken formatter)

    upstream.apply_library()
    try:
        raise ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("deep")]), KeyError("k")])
    except ExceptionGroup as exc:
        text = "".join(traceback.format_exception(exc))
    assert "ValueError: deep" in text and "KeyError: 'k'" in text and "inner" in text


def test_the_startup_hook_is_installed_and_only_for_distkv():
    """distkv_code.pth (see upstream/boot.py) is in site-packages as in the
    source, and loads nothing into other Python programs."""
    import os
    import subprocess
    import sys
    import sysconfig

    from distkv_ext.codekit.upstream import boot

    with open(boot.PTH_FILE, encoding="utf-8") as f:
        want = f.read()
    with open(os.path.join(sysconfig.get_paths()["purelib"], boot.PTH_NAME), encoding="utf-8") as f:
        assert f.read() == want
    code = "import sys; print(sorted(m for m in sys.modules if m.startswith('distkv')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_setup_py_puts_the_startup_hook_into_the_wheel():
    """The build command adds distkv_code.pth at the top of the wheel."""
    import pathlib
    import runpy

    from setuptools.dist import Distribution

    from distkv_ext.codekit.upstream import boot

    root = pathlib.Path(__file__).resolve().parent.parent
    ns = runpy.run_path(str(root / "setup.py"), run_name="not_main")  # defines the command class only
    assert ns["PTH"].replace("/", ".").endswith("upstream.distkv_code.pth")
    assert (root / ns["PTH"]).resolve() == pathlib.Path(boot.PTH_FILE)
    assert issubclass(ns["BuildPyWithPth"], Distribution().get_command_class("build_py"))


def test_administrative_commands_need_an_administrator():
    """distkv_admin: a logged-in user under an ACL is refused DistKV's
    administrative commands, meta data paths and wildcard subscriptions;
    a user without an ACL (and every client of a server without
    authentication) is not.  Against real servers: tests/test_acl.py."""
    from distkv.types import NullACL
    from moat.util import Path

    from distkv_ext.codekit.upstream.distkv_admin import ADMIN_ONLY, refusal

    class Restricted:
        user, _user, acl = object(), None, object()

    class Admin(Restricted):
        acl = NullACL

    class NotLoggedIn(Restricted):
        user = None

    for action in ADMIN_ONLY:
        assert refusal(Restricted(), {"action": action}) and refusal(Admin(), {"action": action}) is None
    for msg in (
        {"action": "set_value", "path": Path(None, "acl", "x")},
        {"action": "get_tree", "path": (None, "auth")},
        {"action": "get_value", "node": "s1", "tick": 3},
        {"action": "msg_monitor", "topic": ("#",)},
        {"action": "msg_monitor", "topic": "a/+/b"},
    ):
        assert refusal(Restricted(), msg), msg
        assert refusal(Admin(), msg) is None and refusal(NotLoggedIn(), msg) is None
    for msg in (
        {"action": "set_value", "path": Path(".distkv", "state", "x")},
        {"action": "msg_send", "topic": ("distkv_code", "run", "any", "g")},
        {"action": "get_value", "path": ("a",)},
    ):
        assert refusal(Restricted(), msg) is None


def test_distkv_acl_command_paths_can_follow_a_tuple():
    """`distkv client acl get|set` add the parsed path to a tuple (a
    TypeError in DistKV 0.65); the repaired parser's paths allow it."""
    import distkv.command.client.acl as dacl

    upstream.apply_client()
    path = dacl.P(":.distkv.code.#")
    assert ("acl", "deploy") + path == ("acl", "deploy", ".distkv", "code", "#") and len(path) == 3


async def test_a_nan_is_refused_and_the_server_lives(client):
    """DistKV 0.65's server died on a value holding a nan (its own update
    did not equal itself); the repaired one refuses it, naming where it is,
    and goes on serving."""
    import math

    from distkv.exceptions import DistKVError
    from moat.util import P

    await client.set(P("nan.ok"), value={"a": [1.0, math.inf]})
    for value, where in ((math.nan, "value"), ({"a": [1, {"b": math.nan}]}, "value.a[1].b")):
        with pytest.raises(DistKVError, match=rf"\b{re.escape(where)} is nan: not stored"):
            await client.set(P("nan.bad"), value=value)
    assert (await client.get(P("nan.ok"))).value == {"a": (1.0, math.inf)}  # DistKV gives lists as tuples
    assert "value" not in await client.get(P("nan.bad"))
    await client.set(P("nan.bad"), value=1)
    assert (await client.get(P("nan.bad"))).value == 1


@pytest.mark.parametrize(("written", "got"), [(None, "200"), (50, "50")])
def test_a_distkv_process_has_the_wider_flow_window_unless_its_file_says(tmp_path, written, got):
    """DistKV's window of 10 messages per stream made busy runners lose
    their watches (`distkv_flow`); every ``distkv`` process starts with
    200, and a ``server: {buffer: N}`` in its file still wins."""
    import os
    import subprocess
    import sys

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"server:\n  buffer: {written}\n" if written else "server:\n  ping: {cycle: 1}\n")
    distkv = os.path.join(os.path.dirname(sys.executable), "distkv")
    out = subprocess.run(
        [distkv, "-c", str(cfg), "dump", "cfg", "server.buffer"], check=False, capture_output=True, text=True
    )
    assert out.stdout.strip() == got, out.stderr


async def test_a_reply_is_queued_without_a_yield_while_there_is_room():
    """DistKV's client reader dropped the connection when it came back
    more than a second after queueing a reply (`distkv_reader`): a loop
    busy for a second elsewhere, right then, was enough.  Repaired, a
    reply queue with room takes a message without yielding (so no time
    can pass), and a full one still waits as before."""
    import anyio
    import distkv.client as dclient
    import trio.testing
    from moat.util import attrdict
    from moat.util.queue import DelayedRead, Queue

    from distkv_ext.codekit.upstream.distkv_reader import EagerDelayedRead, EagerQueue

    upstream.apply_library()

    class FakeClient:  # what StreamedRequest reads of its client
        def __init__(self):
            self.qlen = 0
            self._handlers = {}
            self.config = attrdict(server=attrdict(buffer=2))

    c = FakeClient()
    assert type(dclient.StreamedRequest(c, 1).qr) is EagerQueue
    c.qlen = 4
    assert type(dclient.StreamedRequest(c, 2).qr) is EagerDelayedRead

    plain, eager = Queue(2), EagerQueue(2)
    with trio.testing.assert_checkpoints():
        await plain.put(1)  # upstream: a yield, even with room
    with trio.testing.assert_no_checkpoints():
        await eager.put(1)
        await eager.put(2)
    with pytest.raises(TimeoutError), anyio.fail_after(0.05):
        await eager.put(3)  # full: it waits (and DistKV's second runs out)
    assert [eager.get_nowait(), eager.get_nowait()] == [1, 2]
    flow = EagerDelayedRead(4, get_seq=lambda m: m, send_ack=None)
    with trio.testing.assert_no_checkpoints():
        await flow.put(1)
    assert isinstance(flow, DelayedRead)


def test_the_reader_s_warning_about_our_own_close_is_dropped(caplog):
    """DistKV's client reader warns "Reader socket closed" when the client
    closes its own connection while the reader hands on a reply; a
    ``distkv client`` command then printed that line above its own error
    (a CI run of test_cli_pause).  Repaired, that record is dropped and a
    reader that dies of anything else still warns."""
    import logging

    import distkv.client as dclient

    upstream.apply_library()
    with caplog.at_level(logging.DEBUG, logger="distkv.client"):
        dclient.logger.warning("Reader socket closed")
        dclient.logger.warning("Reader died: %r", RuntimeError("x"))
        dclient.logger.warning("Reader closed in handler")
    assert [r.getMessage() for r in caplog.records] == [
        "Reader died: RuntimeError('x')",
        "Reader closed in handler",
    ]


async def test_a_watch_outlasts_a_reader_that_pauses_for_hundreds_of_changes():
    """DistKV's server sends a watch's changes a flow-control window ahead
    of its reader and queues 100 more, then *drops the watch*: at 10,000
    jobs every runner lost its watch of the group's state again and again
    (a pause of half a second is 100 changes there) and loaded all 10,000
    states anew, which cost the server more than the changes did
    (`distkv_flow`).  Repaired, the queue takes `WATCH_QUEUE` changes: a
    reader that pauses for 500 changes gets every one of them, in order."""
    import anyio
    from moat.util import P

    from distkv_ext.codekit.upstream.distkv_flow import WATCH_QUEUE
    from tests.helpers import in_process_cluster

    n = 500
    assert n > 100 + 200 and n < WATCH_QUEUE  # past DistKV's queue and our window, within ours
    async with in_process_cluster(tocks=5 * n) as cluster, cluster.client() as reader, cluster.client() as writer:
        async with reader.watch(P("wq"), fetch=False, max_depth=1) as w:
            for i in range(n):  # while the reader reads nothing (distinct entries: a
                # watch sends an entry's value as it is when the change goes out)
                await writer.set(P(f"wq.x{i}"), value=i)
            got = []
            with anyio.fail_after(60):
                async for r in w:
                    if "value" in r:
                        got.append(r.value)
                        if len(got) == n:
                            break
    assert got == list(range(n))
