"""Signed code: procedures and modules signed with Ed25519, runners that
run and import only code signed by a trusted key.

In-process DistKV servers for the library and the runner; the real
``distkv`` command for keygen, ``code set``, ``module set``, ``history``
and ``revert``.
"""

import base64
import json
import os
import stat

import pytest
from distkv.code import CodeRoot as DistKVCodeRoot
from moat.util import P, yformat, yload

from distkv_ext.code import SigningKey, new_signing_key, revert_procedure, store_procedure
from distkv_ext.codekit.core.errors import InputRefused, NotTrusted
from distkv_ext.codekit.core.signing import check_trusted, key_id, verify, with_signature
from distkv_ext.deploy import apply_deploy, plan_deploy, read_tree
from distkv_ext.module import get_module, revert_module, store_module
from distkv_ext.run import AnyRunnerRoot, explain_job
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))
PROC = {"code": "return 1", "is_async": None, "vars": [], "requires": []}


def test_a_signature_covers_what_runs_and_where():
    signed = with_signature("proc", ["a", "b"], dict(PROC), KEY)
    trusted = {KEY.public}
    assert verify("proc", ("a", "b"), signed, trusted).ok
    assert verify("proc", ("a", "b"), dict(signed, info="a new line"), trusted).ok  # info does not run
    for changed in (
        dict(signed, code="return 2"),
        dict(signed, is_async=True),
        dict(signed, vars=["x"]),
        dict(signed, requires=["os"]),
        dict(signed, default={"x": 1}),
    ):
        assert not verify("proc", ("a", "b"), changed, trusted).ok
    assert not verify("proc", ("a", "c"), signed, trusted).ok  # moved
    assert not verify("module", ("a", "b"), signed, trusted).ok  # turned into a module
    assert (
        verify("proc", ("a", "b"), signed, {OTHER.public}).reason
        == f"signed by key {key_id(KEY.public)}, which is not trusted"
    )
    assert verify("proc", ("a", "b"), dict(PROC), trusted).reason == "unsigned"
    with pytest.raises(NotTrusted, match=r"procedure a\.b is not signed by a trusted key"):
        check_trusted("proc", ("a", "b"), dict(PROC), trusted, "procedure a.b")


@pytest.mark.parametrize(
    "sig",
    [
        "text",
        {"alg": "rsa"},
        {"alg": "ed25519", "key": 1, "sig": 2},
        {"alg": "ed25519", "key": "!!", "sig": "??"},
        {"alg": "ed25519", "key": base64.b64encode(b"x" * 32).decode(), "sig": base64.b64encode(b"y" * 64).decode()},
    ],
)
def test_a_bad_signature_is_refused_not_raised(sig):
    v = verify("proc", ("a",), dict(PROC, sig=sig), {KEY.public})
    assert not v.ok and v.reason


def test_keygen_writes_a_private_file_and_never_overwrites(tmp_path):
    fn = str(tmp_path / "sign.key")
    key = new_signing_key(fn)
    assert stat.S_IMODE(os.stat(fn).st_mode) == 0o600
    with open(fn) as f:
        assert base64.b64decode(f.read()) != key.public  # the seed, not the public key
    with pytest.raises(InputRefused, match="exists"):
        new_signing_key(fn)


async def test_signed_entries_are_read_by_distkvs_own_code_reader(autojump_clock, client, cr):
    await cr.add("signed.one", code="return x * 2", variables=["x"], signing_key=KEY)
    stored = (await client.get(P(":.distkv.code.proc.signed.one"))).value
    assert stored["sig"]["key"] == KEY.public_text
    assert verify("proc", ("signed", "one"), stored, {KEY.public}).ok
    theirs = await DistKVCodeRoot.as_handler(client)
    await wait_for(lambda: theirs("signed.one", x=21) == 42 if "signed" in theirs else False)


async def test_changing_info_keeps_the_signature_changing_code_drops_it(autojump_clock, client, cr):
    await cr.add("keep", code="return 1", signing_key=KEY)
    await cr.add("keep", code="return 1", info="now with a line of info")  # no key given
    assert verify("proc", ("keep",), cr.lookup("keep").value, {KEY.public}).ok
    await cr.add("keep", code="return 2")  # no key: a changed body is unsigned
    assert "sig" not in cr.lookup("keep").value


async def test_history_and_revert_keep_signatures(autojump_clock, client):
    def edit(code):
        return lambda old: dict(old or {"is_async": None, "variables": [], "requires": []}, code=code)

    await store_procedure(client, "rev", edit("return 1"), signing_key=KEY)
    await store_procedure(client, "rev", edit("return 2"))  # unsigned
    action, value = await revert_procedure(client, "rev")
    assert action == "updated" and value["code"] == "return 1"
    assert verify("proc", ("rev",), value, {KEY.public}).ok  # its signature came back with it

    def medit(code):
        return lambda old: {"code": code, "requires": [], "info": None}

    await store_module(client, "revmod", medit("X = 1\n"), signing_key=KEY)
    await store_module(client, "revmod", medit("X = 2\n"))
    await revert_module(client, "revmod")
    value, _ = await get_module(client, "revmod")
    assert value["code"] == "X = 1\n" and verify("module", ("revmod",), value, {KEY.public}).ok


async def test_a_runner_with_trusted_keys_runs_only_signed_code(autojump_clock, client, cr):
    mods = await cr.load_modules()  # (modules load on demand)
    await mods.add("goodmod", code="V = 10\n", signing_key=KEY)
    await mods.add("badmod", code="V = 20\n")  # unsigned
    await cr.add("good", code="import goodmod\nreturn goodmod.V", signing_key=KEY)
    await cr.add("unsigned", code="return 2")
    await cr.add("foreign", code="return 3", signing_key=OTHER)
    await cr.add("imports_bad", code="import badmod\nreturn badmod.V", signing_key=KEY)
    cfg = dict(FAST, trusted_keys=[KEY.public_text])
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=cfg)
    good = await add_job(r, "good", "good", repeat=1, delay=1)
    unsigned = await add_job(r, "unsigned", "unsigned", delay=1)
    foreign = await add_job(r, "foreign", "foreign", delay=1)
    imports_bad = await add_job(r, "imports_bad", "imports_bad", delay=1)
    await wait_for(lambda: good.state.result == 10 and unsigned.state.error and foreign.state.error)
    await wait_for(lambda: imports_bad.state.error is not None)
    assert unsigned.state.error == "procedure unsigned is not signed by a trusted key (unsigned)"
    assert "not signed by a trusted key (signed by key" in foreign.state.error
    assert "module badmod is not signed by a trusted key" in imports_bad.state.error
    for job in (unsigned, foreign, imports_bad):
        assert job.state.result not in (2, 3, 20)  # never ran
        why = explain_job(job.value, job.state.value)
        assert "not signed by a trusted key" in why["last_error"]
    # the runner carried on: the signed job keeps running
    runs = good.state.runs
    await wait_for(lambda: good.state.runs > runs + 1)
    # signing it afterwards makes it run
    await cr.add("unsigned", code="return 2", signing_key=KEY)
    await wait_for(lambda: unsigned.state.result == 2, timeout=60)


async def test_unsigned_code_written_over_signed_code_stops_the_job(autojump_clock, client, cr):
    await cr.add("svc", code="import anyio\nawait anyio.sleep(1000)", is_async=True, signing_key=KEY)
    r = await AnyRunnerRoot.as_handler(
        client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, trusted_keys=[KEY.public_text])
    )
    job = await add_job(r, "svc", "svc", delay=1)
    await wait_for(lambda: job.state.node == "n1")
    # behind our back, without a key (as anybody with write access could)
    await client.set(P(":.distkv.code.proc.svc"), value={"code": "return 'evil'", "is_async": None, "vars": []})
    await wait_for(lambda: job.state.error is not None)
    assert "not signed by a trusted key" in job.state.error
    assert job.state.result != "evil"


def _write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


async def test_deploy_signs_and_a_deploy_without_the_key_keeps_the_signatures(tmp_path, autojump_clock, client):
    root = str(tmp_path)
    _write(root, "procs/dp.py", "import dm\nreturn dm.X\n")
    _write(root, "modules/dm.py", "X = 1\n")
    plan = await plan_deploy(client, read_tree(root), signing_key=KEY)
    await apply_deploy(client, plan)
    proc = (await client.get(P(":.distkv.code.proc.dp"))).value
    mod = (await client.get(P(":.distkv.code.module.dm"))).value
    assert verify("proc", ("dp",), proc, {KEY.public}).ok and verify("module", ("dm",), mod, {KEY.public}).ok
    again = await plan_deploy(client, read_tree(root))  # no key: unchanged entries stay signed
    assert not again.pending


# ---- the command line ---------------------------------------------------


def _config(node, tmp_path, **codes):
    with open(node.configs[0]) as f:
        cfg = yload(f)
    cfg.setdefault("codes", {}).update(codes)
    fn = str(tmp_path / "signer.yaml")
    with open(fn, "w") as f:
        f.write(yformat(cfg))
    return fn


def test_cli_keygen_set_history_revert(node, tmp_path):
    keyfile = str(tmp_path / "sign.key")
    r = node.run("code", "keygen", keyfile, "-o", "json")
    assert r.returncode == 0, r.err
    pub = json.loads(r.out)["public_key"]
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    assert node.run("code", "keygen", keyfile).returncode == 4  # never overwritten
    signer = _config(node, tmp_path, signing_key=keyfile)
    src = tmp_path / "p.py"
    src.write_text("return 1\n")
    r = node.run("code", "set", "sig.cli", "-s", str(src), config=signer)
    assert r.returncode == 0, r.err
    value = json.loads(node.run("code", "get", "sig.cli", "-o", "json").out)
    assert value["sig"]["key"] == pub
    src.write_text("return 2\n")
    assert node.run("code", "set", "sig.cli", "-s", str(src)).returncode == 0  # no key: unsigned
    hist = json.loads(node.run("code", "history", "sig.cli", "-o", "json").out)
    assert [h["signed"] for h in hist] == [key_id(base64.b64decode(pub)), ""]
    assert node.run("code", "revert", "sig.cli").returncode == 0
    value = json.loads(node.run("code", "get", "sig.cli", "-o", "json").out)
    assert value["code"] == "return 1\n" and value["sig"]["key"] == pub
    msrc = tmp_path / "m.py"
    msrc.write_text("X = 1\n")
    assert node.run("module", "set", "sigmod", "-s", str(msrc), config=signer).returncode == 0
    assert json.loads(node.run("module", "get", "sigmod", "-o", "json").out)["sig"]["key"] == pub


def test_cli_bad_signing_key_file_is_a_usage_error_and_nothing_is_written(node, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not base64 !!\n")
    src = tmp_path / "p.py"
    src.write_text("return 1\n")
    r = node.run("code", "set", "sig.bad", "-s", str(src), config=_config(node, tmp_path, signing_key=str(bad)))
    assert r.returncode == 2 and r.err.startswith("Error: codes.signing_key: ") and "Traceback" not in r.err
    assert node.run("code", "get", "sig.bad").returncode == 3
