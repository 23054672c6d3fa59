"""The README's DistKV users and ACLs, run exactly as printed, against real
servers with password authentication.

On a server started by this project (``distkv-code-node``: DistKV with
its repairs) the deploy user deploys, a runner daemon under the runner
user runs jobs (creating state, output and error entries), the runner
user cannot write procedures, modules or runner entries, and neither
user can change ACLs or users, read password hashes or switch
authentication off.  On a stock ``distkv server`` the same users can do
all of the latter, as the README says.
"""

import json
import os
import re
import shlex
import subprocess
import time

import anyio
import nacl.secret
import pytest
from moat.util import P, Path, yformat, yload

from distkv_ext.devtools.ports import free_ports
from tests.helpers import DISTKV, Daemon, query, run_distkv, running_node, wait_until

pytestmark = pytest.mark.slow

README = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")
PASSWORDS = {"ADMIN_PASSWORD": "admin-pw-1", "DEPLOY_PASSWORD": "deploy-pw-2", "RUNNER_PASSWORD": "runner-pw-3"}
USERS = {"admin": "ADMIN_PASSWORD", "deploy": "DEPLOY_PASSWORD", "runner": "RUNNER_PASSWORD"}


def recipe():
    """The command lines of the README's ACL recipe, passwords filled in."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"<!-- acl-recipe:.*?```sh\n(.*?)```\n<!-- acl-recipe end -->", text, re.S)
    assert block, "the README's ACL recipe is gone"
    res = []
    for line in block.group(1).splitlines():
        if line.startswith("distkv "):
            filled = line
            for k, v in PASSWORDS.items():
                filled = filled.replace(k, v)
            res.append(shlex.split(filled))
    assert res and res[-1][-1] == "init"
    return res


def set_up(config, tmp_path):
    """Run the recipe as the (still anonymous) administrator; return the
    configuration file of each user."""
    for argv in recipe():
        r = run_distkv("-c", config, *argv[1:])
        assert r.returncode == 0, (argv, r.outcome)
    with open(config) as f:
        base = yload(f)
    cfgs = {}
    for user, pw in USERS.items():
        cfg = dict(base, connect=dict(base["connect"], auth=f"password name={user} password={PASSWORDS[pw]}"))
        fn = tmp_path / f"{user}.yaml"
        fn.write_text(yformat(cfg))
        os.chmod(fn, 0o600)
        cfgs[user] = str(fn)
    return cfgs


def client(config, *args, **kw):
    return run_distkv("-c", config, "client", *args, **kw)


def _login_with_hash(config, user, hashed):
    """Log in as ``user`` sending its stored password hash, as DistKV's
    password login sends it (no password needed); then try to make the
    attacker's ACL ``*``.  Returns the exception or None."""
    import distkv.auth.password as pw
    from distkv.auth import gen_auth

    async def pack_hash(client, password, length):  # what pack_pwd does, minus the hashing
        secret = await client.dh_secret(length=length)
        return nacl.secret.SecretBox(secret).encrypt(password)

    with open(config) as f:
        cfg = yload(f, attr=True)
    auth = gen_auth(f"password name={user} password=whatever")
    auth._pass = hashed
    cfg.connect.auth = auth
    orig = pw.pack_pwd
    pw.pack_pwd = pack_hash
    try:

        async def main():
            from distkv.client import open_client

            async with open_client(**cfg) as c:
                await c._request("set_internal", path=("acl", "runner", "#"), value="rwdcxena", iter=False)

        anyio.run(main, backend="trio")
    except Exception as exc:
        return exc
    finally:
        pw.pack_pwd = orig
    return None


def admin_attempts(config):
    """What a logged-in user tries in DistKV's meta data: {what: exception or None}."""

    async def run(c):
        res = {}
        for what, coro in (
            (
                "read a password hash",
                c._request("get_internal", path=("auth", "password", "user", "admin"), iter=False),
            ),
            ("write an ACL", c._request("set_internal", path=("acl", "runner", ":", "x"), value="r", iter=False)),
            ("write an ACL by set_value", c.set(Path(None, "acl", "runner", "y"), value="r")),
            (
                "make itself administrator",
                c._request(
                    "set_internal", path=("auth", "password", "user", "runner", "acl"), value={"key": "*"}, iter=False
                ),
            ),
            ("delete an ACL", c._request("delete_internal", path=("acl", "runner", ":", "x"), iter=False)),
            ("save the server's state to a file", c._request("save", path="/tmp/distkv-acl-test-save", iter=False)),
        ):
            try:
                res[what] = await coro
            except Exception as exc:
                res[what] = exc
        return res

    return query(config, run)


def hash_of(config, user):
    async def get(c):
        r = await c._request("get_internal", path=("auth", "password", "user", user), iter=False)
        return r.value["password"]

    return query(config, get)


def test_acl_recipe_on_a_repaired_server(tmp_path):
    with running_node(tmp_path / "node", n=1) as nd:
        cfgs = set_up(nd.configs[0], tmp_path)
        # nobody gets in without a login now
        assert client(nd.configs[0], "code", "list").returncode != 0

        # deploy works under the deploy user
        d = tmp_path / "deploy"
        (d / "procs").mkdir(parents=True)
        (d / "modules").mkdir()
        (d / "procs" / "ok.py").write_text("import aclmod\nprint('hello from', aclmod.NAME)\nreturn 42\n")
        (d / "procs" / "fails.py").write_text("raise RuntimeError('boom')\n")
        (d / "modules" / "aclmod.py").write_text("NAME = 'aclmod'\n")
        (d / "jobs.yaml").write_text(
            "defaults: {group: aclg, target: now}\njobs:\n  - code: ok\n  - code: fails\n    delay: 60\n"
        )
        r = client(cfgs["deploy"], "code", "deploy", str(d))
        assert r.returncode == 0, r.outcome
        (d / "procs" / "ok.py").write_text("import aclmod\nprint('hello from', aclmod.NAME)\nreturn 43\n")
        assert client(cfgs["deploy"], "code", "deploy", str(d)).returncode == 0  # a change: history
        hist = json.loads(client(cfgs["deploy"], "code", "history", "ok", "-o", "json").out)
        assert len(hist) == 2
        assert client(cfgs["deploy"], "run", "set", "extra", "-c", "ok", "-g", "aclg", "-t", "never").returncode == 0

        # a runner daemon under the runner user runs the jobs: new states, output, errors
        runner = Daemon(cfgs["runner"], "-g", "aclg", "--name", "r1", log=str(tmp_path / "runner.log"))
        try:
            wait_until(
                lambda: (
                    json.loads(client(cfgs["deploy"], "run", "state", "ok", "-g", "aclg", "-o", "json").out).get(
                        "result"
                    )
                    == 43
                ),
                timeout=60,
                what="the job's result",
            )
            state = json.loads(client(cfgs["deploy"], "run", "state", "fails", "-g", "aclg", "-o", "json").out)
            assert state["error"] == "RuntimeError: boom"
            assert "hello from aclmod" in client(cfgs["deploy"], "run", "logs", "ok", "-g", "aclg").out
            errors = query(cfgs["admin"], _errors)
            assert any("boom" in str(e) for e in errors)
            assert runner.alive()
        finally:
            runner.term()

        # the runner user cannot write procedures, modules or runner entries
        src = tmp_path / "evil.py"
        src.write_text("return 'evil'\n")
        msrc = tmp_path / "evilmod.py"
        msrc.write_text("NAME = 'evil'\n")
        evil_dir = tmp_path / "evil"
        (evil_dir / "procs").mkdir(parents=True)
        (evil_dir / "procs" / "ok.py").write_text("return 'evil'\n")  # 'ok' is the deploy user's tree's
        for argv in (
            ("code", "set", "evil", "-s", str(src)),
            ("code", "set", "ok", "-s", str(src)),
            ("module", "set", "aclmod", "-s", str(msrc)),
            ("module", "set", "evilmod", "-s", str(msrc)),
            ("run", "set", "evil", "-c", "ok", "-g", "aclg", "-t", "now"),
            ("run", "delete", "ok", "-g", "aclg"),
            ("run", "pause", "ok", "-g", "aclg"),
            ("code", "deploy", "--take-over", str(evil_dir)),
        ):
            r = client(cfgs["runner"], *argv)
            assert r.returncode == 1 and "permission denied" in r.err, (argv, r.outcome)
        assert json.loads(client(cfgs["deploy"], "code", "get", "ok", "-o", "json").out)["code"].endswith("return 43\n")
        # ... while the deploy user pauses and resumes jobs
        assert client(cfgs["deploy"], "run", "pause", "ok", "-g", "aclg").outcome == (0, "paused: ok\n", "")
        assert client(cfgs["deploy"], "run", "resume", "ok", "-g", "aclg").outcome == (0, "resumed: ok\n", "")

        # the deploy user cannot forge states
        async def forge(c):
            try:
                await c.set(P(":.distkv.state.any.aclg.ok"), value={"node": "x"})
            except Exception as exc:
                return exc

        assert "ACLError" in repr(query(cfgs["deploy"], forge))

        # paths that no rule matches are allowed (the README says so)
        async def elsewhere(c):
            return await c.set(P("app.data.x"), value=1)

        assert query(cfgs["runner"], elsewhere).changed

        # neither can change ACLs or users, nor read password hashes
        for user in ("runner", "deploy"):
            res = admin_attempts(cfgs[user])
            for what, outcome in res.items():
                assert isinstance(outcome, Exception) and "AdminRequired" in str(outcome), (user, what, outcome)
            for argv in (
                ("acl", "set", user, "-a", "rwdcxen", ":.distkv.code.#"),
                ("auth", "-m", "password", "user", "param", user, "acl", "*"),
                ("auth", "-m", "password", "user", "add", "name=evil", "password=evil-pw"),
                ("auth", "-m", "password", "init", "-s"),
            ):
                r = client(cfgs[user], *argv)
                assert r.returncode != 0 and "AdminRequired" in r.err, (user, argv, r.outcome)
        # the administrator can
        assert client(cfgs["admin"], "acl", "set", "runner", "-a", "rxe", ":.distkv.extra.#").returncode == 0
        assert set(client(cfgs["admin"], "acl", "get", "runner", ":.distkv.extra.#").out.strip().strip("'")) == set(
            "rxe"
        )
        hashed = hash_of(cfgs["admin"], "admin")
        assert _login_with_hash(cfgs["admin"], "admin", hashed) is None  # why reading hashes must be refused


async def _errors(c):
    res = []
    async for r in c.get_tree(P(":.distkv.error")):
        res.append(r.get("value"))
    return res


def _stock_server(nd, tmp_path):
    """A stock ``distkv server`` (no repairs of ours) on the node's broker,
    as a cluster of its own; returns (process, client configuration)."""
    with open(nd.configs[0]) as f:
        cfg = yload(f)
    (port,) = free_ports(1)
    cfg["connect"] = {"host": "127.0.0.1", "port": port, "init_timeout": 10}
    cfg["server"]["bind"] = [{"host": "127.0.0.1", "port": port}]
    cfg["server"]["bind_default"] = {"host": "127.0.0.1", "port": port}
    cfg["server"]["root"] = [":stock"]  # its own topics on the shared broker
    cfg["hostmap"] = {"stock": ["127.0.0.1", port]}
    fn = tmp_path / "stock.yaml"
    fn.write_text(yformat(cfg))
    with open(tmp_path / "stock.log", "wb") as log:
        proc = subprocess.Popen([DISTKV, "-c", str(fn), "server", "-I", "123", "stock"], stdout=log, stderr=log)
    wait_until(lambda: client(str(fn), "code", "list").returncode in (0, 3), timeout=60, what="the stock server")
    return proc, str(fn)


def test_on_a_stock_server_any_logged_in_user_can_change_acls_and_users(tmp_path):
    with running_node(tmp_path / "node", n=1) as nd:
        proc, config = _stock_server(nd, tmp_path)
        try:
            cfgs = set_up(config, tmp_path)
            # the data commands do check the ACLs ...
            src = tmp_path / "evil.py"
            src.write_text("return 'evil'\n")
            assert client(cfgs["runner"], "code", "set", "evil", "-s", str(src)).returncode == 1
            # ... the internal ones do not
            res = admin_attempts(cfgs["runner"])
            for what in ("read a password hash", "write an ACL", "make itself administrator", "delete an ACL"):
                assert not isinstance(res[what], Exception), (what, res[what])
            hashed = res["read a password hash"].value["password"]
            assert _login_with_hash(config, "admin", hashed) is None  # the runner logs in as admin
            r = client(cfgs["deploy"], "auth", "-m", "password", "user", "add", "name=evil", "password=evil-pw")
            assert r.returncode == 0, r.outcome
            # and with its ACL now '*', the runner writes code
            time.sleep(0.5)
            assert client(cfgs["runner"], "code", "set", "evil", "-s", str(src)).returncode == 0

            # and switches authentication off, for everybody
            async def auth_off(c):
                await c._request("set_auth_typ", typ=None)

            query(cfgs["deploy"], auth_off)
            assert client(config, "code", "get", "evil").returncode == 0  # no login any more
        finally:
            proc.terminate()
            proc.wait(20)
