"""The status page against DistKV's in-process servers: the model fed by
real watches, the pages and the JSON API through the ASGI app, hostile
values in the store, the actions' token, CSRF, and the event stream.

(Real processes, a runner and the browser: test_web_processes.py and
test_web_browser.py.)"""

import functools
import os
import time

import anyio
import pytest
from moat.util import P

from distkv_ext.codekit.core.errors import BadArguments
from distkv_ext.web import Guard, StatusModel, load_token, make_app, run_model
from distkv_ext.web._live import prefixes
from tests.helpers import wait_for
from tests.web_asgi import call, events

TOKEN = "s3cret-token-for-tests-0123456789"
XSS = "<script>alert(1)</script>"


async def _fill(c):
    """Jobs, states, output, errors, procedures: good ones and hostile ones."""
    await c.set(P(":.distkv.code.proc.wt.ok"), value={"code": "return 1", "is_async": None, "vars": [], "info": "fine"})
    await c.set(P(":.distkv.code.proc.wt.odd"), value="not a procedure")
    await c.set(
        P(":.distkv.code.history.proc.wt.ok.1"), value={"value": {"code": "return 0"}, "replaced": 1.0, "by": "me"}
    )
    await c.set(P(":.distkv.code.history.proc.wt.ok.x"), value="not a version")
    await c.set(P(":.distkv.run.any.wg.good"), value={"code": P("wt.ok"), "data": {}, "target": time.time()})
    await c.set(P(":.distkv.run.any.wg") + (XSS,), value={"code": P("wt.ok"), "data": {}, "info": XSS})
    await c.set(P(":.distkv.run.any.wg.notadict"), value="oops")
    await c.set(P(":.distkv.run.any.wg.badtypes"), value={"code": P("wt.ok"), "target": "soon", "repeat": [1]})
    await c.set(P(":.distkv.run.all.wg.every"), value={"code": P("wt.ok"), "data": {}, "target": 1})
    await c.set(P(":.distkv.run.at.n1.wg.hw"), value={"code": P("wt.ok"), "data": {}, "target": 1})
    await c.set(P(":.distkv.run.any.other.secretjob"), value={"code": P("wt.ok"), "data": {}, "target": 1})
    await c.set(
        P(":.distkv.state.any.wg") + (XSS,),
        value={"node": None, "error": f"ValueError: {XSS}", "backoff": 1, "started": 5, "stopped": 6, "runs": 1},
    )
    await c.set(P(":.distkv.state.any.wg.good"), value={"node": "r1", "started": time.time(), "runs": 3})
    await c.set(
        P(":.distkv.state.all.wg.m1.every"), value={"node": None, "result": b"\x00bytes", "runs": 1, "stopped": 2}
    )
    await c.set(P(":.distkv.state.all.wg.m2.every"), value=["not", "a", "state"])
    await c.set(
        P(":.distkv.output.any.wg") + (XSS, "1"),
        value={"node": "r1", "run": 1, "started": 5, "lines": [[5, "stdout", XSS], "junk", [6, "traceback", "Boom"]]},
    )
    await c.set(P(":.distkv.output.any.wg.good.7"), value="no dict")
    await c.set(
        P(":.distkv.error.r1.100"),
        value={"path": P(":.distkv.run.any.wg") + (XSS,), "subsystem": "run", "resolved": False, "count": 2},
    )
    await c.set(P(":.distkv.error.r1.100.r1"), value={"message": f"failed {XSS}", "trace": f"</pre>{XSS}", "seen": 7})
    await c.set(P(":.distkv.error.r1.101"), value={"path": "no path", "subsystem": "other", "resolved": False})
    await c.set(P(":.distkv.error.r1.102"), value={"path": P(":.distkv.run.any.other.secretjob"), "subsystem": "run"})
    await c.set(P(":.distkv.error.r1.103"), value=12)


@pytest.fixture
async def page(client):
    """(model, app, client) of a read-only page of group wg."""
    await _fill(client)
    model = StatusModel(["wg"])
    async with anyio.create_task_group() as tg:
        await tg.start(functools.partial(run_model, client, model))
        app = make_app(model, Guard(None), client, prefixes(client._cfg), host="127.0.0.1", info="test")
        yield model, app, client
        tg.cancel_scope.cancel()


async def test_hostile_values_render_escaped(page):
    _, app, _ = page
    r = await call(app, "GET", "/")
    assert r.status == 200, r.text
    assert XSS not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "secretjob" not in r.text  # group other is not shown
    jobs = (await call(app, "GET", "/api/jobs")).json()
    by = {(j["path"], j["member"]): j for j in jobs}
    assert {j["kind"] for j in jobs} == {"any", "all", "single"}
    assert all({"path", "group", "kind", "node", "state"} <= set(j) for j in jobs)
    assert by[("good", None)]["state"] == "running" and by[("good", None)]["node"] == "r1"
    assert by[("badtypes", None)]["state"] == "broken"
    assert by[("every", "m1")]["result"] and by[("every", "m2")]["state"]
    assert by[("hw", None)]["node"] == "n1"
    xss = next(j for j in jobs if j["info"] == XSS)
    assert xss["state"] == "failed" and XSS in xss["error"]
    errs = (await call(app, "GET", "/api/errors")).json()
    assert [e["id"] for e in errs] == ["r1.100"]
    assert errs[0]["job"]["query"] and XSS in errs[0]["trace"]
    # every job's page renders, the unknown one is a 404
    for j in jobs:
        r = await call(app, "GET", f"/job?{j['query']}")
        assert r.status == 200 and XSS not in r.text, j
    assert (await call(app, "GET", "/job?k=any&g=wg&p=nothing")).status == 404
    assert (await call(app, "GET", "/job?k=bad")).status == 404
    text = (await call(app, "GET", "/metrics")).text
    assert 'distkv_run_jobs{group="wg",kind="any",state="running"} 1.0' in text


async def test_loopback_page_refuses_other_host_names(page):
    _, app, _ = page
    assert (await call(app, "GET", "/", headers={"Host": "evil.example:8765"})).status == 400
    assert (await call(app, "GET", "/", headers={"Host": "localhost:8765"})).status == 200


async def test_read_only_page_refuses_every_action(page):
    _, app, _ = page
    r = await call(app, "POST", "/api/errors/ack", body="error=r1.100", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 403 and "read-only" in r.json()["error"]
    assert (await call(app, "POST", "/login", body=f"token={TOKEN}")).status == 403
    assert "read-only" in (await call(app, "GET", "/")).text


@pytest.fixture
async def acting(page):
    model, _, client = page
    app = make_app(model, Guard(TOKEN), client, prefixes(client._cfg), host="127.0.0.1", info="test")
    return model, app, client


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_actions_need_the_token_in_the_right_place(acting):
    model, app, client = acting
    body = "error=r1.100"
    assert (await call(app, "POST", "/api/errors/ack", body=body, headers=FORM)).status == 401
    r = await call(app, "POST", "/api/errors/ack", body=body, headers={"Authorization": "Bearer wrong"})
    assert r.status == 403
    # a token in a URL is refused and not used
    r = await call(app, "POST", f"/api/errors/ack?token={TOKEN}", body=body, headers=FORM)
    assert r.status == 400 and "URL" in r.json()["error"]
    assert (await call(app, "GET", "/api/errors/ack")).status == 405
    r = await call(app, "POST", "/api/errors/nosuch", body=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 404
    r = await call(app, "POST", "/api/errors/ack", body="error=r1.999", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 404
    # the right place: the Authorization header
    r = await call(app, "POST", "/api/errors/ack", body=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200, r.text
    assert (await client.get(P(":.distkv.error.r1.100"))).value["resolved"]
    await wait_for(lambda: model.errors[("r1", "100")].get("resolved"))
    assert not (await call(app, "GET", "/api/errors")).json()


async def test_browser_session_needs_csrf_and_same_origin(acting):
    model, app, client = acting
    assert (await call(app, "POST", "/login", body="token=wrong", headers=FORM)).status == 403
    r = await call(app, "POST", "/login", body=f"token={TOKEN}&next=/", headers=FORM)
    assert r.status == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    sid = cookie.split(";")[0]
    hs = dict(FORM, Cookie=sid, Accept="text/html")
    page = (await call(app, "GET", "/", headers={"Cookie": sid})).text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert (await call(app, "POST", "/api/errors/delete", body="error=r1.100", headers=hs)).status == 403
    other = dict(hs, Origin="http://evil.example")
    r = await call(app, "POST", "/api/errors/delete", body=f"error=r1.100&csrf={csrf}", headers=other)
    assert r.status == 403
    r = await call(app, "POST", "/api/errors/delete", body=f"error=r1.100&csrf={csrf}&next=//evil", headers=hs)
    assert r.status == 303 and r.headers["location"] == "/"
    await wait_for(lambda: ("r1", "100") not in model.errors)
    assert "value" not in await client.get(P(":.distkv.error.r1.100.r1"))


async def test_events_push_changes(page):
    model, app, client = page
    got = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(events, app, f"/events?v={model.version}", got)
        await client.set(P(":.distkv.state.any.wg.good"), value={"node": "r2", "started": time.time(), "runs": 4})
        await wait_for(lambda: [d for e, d in got if e == "jobs"], timeout=10)
        jobs = next(d for e, d in got if e == "jobs")["jobs"]
        assert [j["key"] for j in jobs] == ["any|wg||good"] and ">r2<" in jobs[0]["html"]
        await client.delete(P(":.distkv.run.any.wg.good"))
        await wait_for(lambda: [j for e, d in got if e == "jobs" for j in d["jobs"] if not j["html"]], timeout=10)
        tg.cancel_scope.cancel()


def test_token_file_is_checked(tmp_path):
    with pytest.raises(BadArguments, match="web_token_file"):
        load_token(None)
    f = tmp_path / "token"
    f.write_text("short\n")
    os.chmod(f, 0o600)
    with pytest.raises(BadArguments, match="at least 16"):
        load_token(str(f))
    f.write_text(TOKEN + "\n")
    os.chmod(f, 0o644)
    with pytest.raises(BadArguments, match="chmod 600"):
        load_token(str(f))
    os.chmod(f, 0o600)
    assert load_token(str(f)) == TOKEN
    g = Guard(TOKEN)
    assert g.check_token(TOKEN) and not g.check_token(TOKEN[:-1]) and not Guard(None).check_token(TOKEN)


async def test_job_page_tail_is_live(page):
    model, app, client = page
    r = await call(app, "GET", "/job?k=any&g=wg&p=good")
    assert r.status == 200 and "No output stored" in r.text
    got = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(events, app, f"/events?v={model.version}&k=any&g=wg&p=good", got)
        lines = [[time.time(), "stdout", f"tick {i} <i>"] for i in range(3)]
        await client.set(
            P(":.distkv.output.any.wg.good.3"), value={"node": "r1", "run": 3, "started": 1, "lines": lines}
        )
        await wait_for(
            lambda: [d for e, d in got if e == "section" and "tick 2" in d.get("job-output", "")], timeout=10
        )
        sec = next(d for e, d in got if e == "section")
        assert "tick 2 &lt;i&gt;" in sec["job-output"] and "#3" in sec["job-runs"]
        tg.cancel_scope.cancel()
