"""Process mode as stored: the ``process`` field of a procedure, what
``code set --process`` and a deploy header ``mode: process`` write, what
``code get``/``list`` show, and that hashes, pins and signatures cover it
(only when set, so that every earlier one stays valid).

Pure functions and in-process DistKV servers; the real ``distkv`` command
for the CLI."""

import json

import pytest
from distkv.code import CodeRoot as DistKVCodeRoot
from moat.util import P

from distkv_ext.code import MODES, SigningKey, is_process, mode_of, procedure_value
from distkv_ext.codekit.core.digest import content_hash, pin_hash
from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.signing import key_id, verify, with_signature
from distkv_ext.deploy import read_tree
from distkv_ext.run import AnyRunnerRoot
from tests.helpers import wait_for
from tests.test_hostile_deploy import refused, tree
from tests.test_run_lib import FAST, add_job

KEY = SigningKey(bytes(range(32)))
PROC = {"code": "return 1", "is_async": None, "vars": [], "requires": []}
#: content_hash and pin_hash of PROC before the process field existed
OLD_HASH = "0dfb5d163e686c2b50732d168fcab578fc6805480c64c07c12799eb7c40d40d5"
OLD_PIN = "96adb4996a3e91f963789e24b0fb29601eee89b8c9bba20544d5af4e0aa77349"


def test_modes_and_the_stored_field():
    assert mode_of(procedure_value(P("a"), "return 1", process=True)) == "process"
    assert procedure_value(P("a"), "return 1", process=True)["process"] is True
    assert "process" not in procedure_value(P("a"), "return 1")  # DistKV 0.65's layout, unchanged
    v = procedure_value(P("a"), "await x()", is_async=True, process=True)
    assert (mode_of(v), v["is_async"]) == ("process-async", True)
    assert [mode_of(dict(PROC, is_async=a, process=p)) for a, p in MODES.values()] == list(MODES)
    assert not is_process(dict(PROC, process="yes")) and not is_process(None)
    with pytest.raises(InputRefused, match=r"^process mode runs sync or async code, not thread code$"):
        procedure_value(P("a"), "return 1", is_async=False, process=True)
    with pytest.raises(InputRefused, match=r"^process must be true or false, not 'yes'$"):
        procedure_value(P("a"), "return 1", process="yes")


def test_hashes_and_pins_cover_process_mode_only_when_set():
    none = lambda name: None  # noqa: E731
    assert content_hash(PROC) == content_hash(dict(PROC, process=False)) == OLD_HASH
    assert pin_hash(PROC, none) == pin_hash(dict(PROC, process=False), none) == OLD_PIN
    assert content_hash(dict(PROC, process=True)) != OLD_HASH
    assert pin_hash(dict(PROC, process=True), none) != OLD_PIN


def test_a_signed_procedure_cannot_be_flipped_into_process_mode_or_back():
    trusted = {KEY.public}
    signed_sync = with_signature("proc", ["a"], dict(PROC), KEY)
    assert verify("proc", ("a",), signed_sync, trusted).ok
    assert verify("proc", ("a",), dict(signed_sync, process=False), trusted).ok  # the same thing
    flipped = verify("proc", ("a",), dict(signed_sync, process=True), trusted).reason
    assert flipped == f"its signature (key {key_id(KEY.public)}) does not match its content"
    signed_proc = with_signature("proc", ["a"], dict(PROC, process=True), KEY)
    assert verify("proc", ("a",), signed_proc, trusted).ok
    back = {k: v for k, v in signed_proc.items() if k != "process"}
    assert verify("proc", ("a",), back, trusted).reason == flipped


async def test_a_runner_refuses_a_signed_procedure_flipped_in_the_store(autojump_clock, client, cr):
    await cr.add("flip.me", code="return 7", signing_key=KEY)
    stored = (await client.get(P(":.distkv.code.proc.flip.me"))).value
    await client.set(P(":.distkv.code.proc.flip.me"), value=dict(stored, process=True))  # same signature
    cfg = dict(FAST, trusted_keys=[KEY.public_text])
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "flip"), code=cr, node="n1", cfg=cfg)
    job = await add_job(r, "flip", "flip.me", delay=100)
    await wait_for(lambda: job.state.error)
    assert job.state.error == (
        f"procedure flip.me is not signed by a trusted key (its signature (key {key_id(KEY.public)})"
        " does not match its content)"
    )


async def test_distkvs_own_runner_code_reader_runs_it_as_sync_code(autojump_clock, client, cr):
    await cr.add("pm.plain", code="return x * 2", variables=["x"], process=True)
    theirs = await DistKVCodeRoot.as_handler(client)
    await wait_for(lambda: theirs("pm.plain", x=21) == 42 if "pm" in theirs else False)


def test_a_deploy_header_asks_for_process_mode(tmp_path):
    root = tree(
        tmp_path / "t",
        {
            "procs/pm/a.py": "# distkv:\n#   mode: process\nreturn 1\n",
            "procs/pm/b.py": "# distkv:\n#   mode: process-async\nimport anyio\nawait anyio.sleep(0)\n",
            "procs/pm/c.py": "return 3\n",
        },
    )
    t = read_tree(root)
    assert not t.problems
    got = {str(i.path): mode_of(i.value) for i in t.procs.values()}
    assert got == {"pm.a": "process", "pm.b": "process-async", "pm.c": "sync"}


@pytest.mark.usefixtures("node")
class TestCLI:
    def test_set_get_list_process_mode(self, node):
        r = node.run("code", "set", "pmcli.one", "--process", "-s", "-", input="return 41 + 1\n")
        assert r.outcome == (0, "created: pmcli.one\n", "")
        got = json.loads(node.run("code", "get", "pmcli.one", "-o", "json").out)
        assert (got["mode"], got["process"], got["is_async"]) == ("process", True, None)
        r = node.run("code", "set", "pmcli.one", "--process-async")
        assert r.outcome == (0, "updated: pmcli.one\n", "")
        r = node.run("code", "list", "pmcli", "-o", "json")
        assert [x["mode"] for x in json.loads(r.out)] == ["process-async"]
        r = node.run("code", "set", "pmcli.one", "--sync")  # and back: the field goes
        got = json.loads(node.run("code", "get", "pmcli.one", "-o", "json").out)
        assert (got["mode"], "process" in got) == ("sync", False)
        r = node.run("code", "set", "pmcli.one", "--process")
        assert node.run("code", "call", "pmcli.one").outcome == (0, "42\n", "")  # `code call`: here, as sync code

    def test_a_bad_mode_in_a_deploy_header_is_refused(self, node, tmp_path):
        root = tree(tmp_path / "t", {"procs/pmh/a.py": "# distkv:\n#   mode: process-thread\nreturn 1\n"})
        refused(
            node,
            root,
            ["procs/pmh/a.py:2: mode must be one of sync, thread, async, process, process-async, not 'process-thread'"],
        )
