"""Job code's ``_cfg`` holds no secrets: no DistKV login, no key files,
no passwords of URLs, nothing named like a password."""

from moat.util import attrdict

from distkv_ext.codekit.core.redact import HIDDEN, redact
from distkv_ext.run import AnyRunnerRoot
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

SECRET = "s3cr3t-pw"


def test_redact_drops_secrets_and_keeps_the_rest():
    cfg = attrdict(
        connect=attrdict(host="h", port=1, auth=f"password name=runner password={SECRET}"),
        server=attrdict(mqtt=attrdict(uri=f"mqtt://user:{SECRET}@broker:1883/")),
        runner=attrdict(group_key="/etc/distkv/group.key", group_key_next="/x", weight=2, trusted_keys=["pub"]),
        codes=attrdict(signing_key="/etc/distkv/sign.key", prefix=(".distkv", "code", "proc")),
        app=attrdict(db_password=SECRET, api_token=SECRET, private_key=SECRET, list=[f"https://a:{SECRET}@b/"]),
    )
    r = redact(cfg)
    assert SECRET not in repr(r) and "/etc/distkv" not in repr(r)
    assert r.connect.auth == HIDDEN and r.runner.group_key == HIDDEN and r.codes.signing_key == HIDDEN
    assert r.connect.host == "h" and r.runner.weight == 2 and r.runner.trusted_keys == ["pub"]  # public keys stay
    assert r.server.mqtt.uri == f"mqtt://user:{HIDDEN}@broker:1883/"
    assert SECRET in repr(cfg)  # the original is untouched


async def test_job_code_sees_no_secrets(autojump_clock, client, cr, tmp_path):
    client._cfg["connect"]["auth"] = f"password name=runner password={SECRET}"
    client._cfg.setdefault("codes", attrdict())["signing_key"] = str(tmp_path / "sign.key")
    try:
        await cr.add("showcfg", code="return repr(_cfg) + repr(dict(_cfg))")
        r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
        job = await add_job(r, "showcfg", "showcfg")
        await wait_for(lambda: isinstance(job.state.result, str))
        assert SECRET not in job.state.result and str(tmp_path) not in job.state.result
        assert "connect" in job.state.result and HIDDEN in job.state.result
    finally:
        client._cfg["connect"].pop("auth", None)
