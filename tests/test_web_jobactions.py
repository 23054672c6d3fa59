"""The status page's job actions (trigger, pause, resume) and how it shows
a pause, against in-process DistKV servers (no runner: the store is
checked)."""

from moat.util import P

from distkv_ext.run import PAUSE_PREFIX
from tests.helpers import wait_for
from tests.test_web_page import TOKEN, acting, page  # noqa: F401 (fixtures)
from tests.web_asgi import call

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB = "k=any&g=wg&p=good"


def why_of(model, key):
    from distkv_ext.web._views import job_rows

    ref = next(r for r in model.jobs if r.path == tuple(P(key)))
    return job_rows(model, ref)[0]


async def test_pause_resume_and_trigger_from_the_page(acting):  # noqa: F811
    model, app, client = acting
    r = await call(app, "POST", "/api/jobs/pause", body=JOB, headers=AUTH)
    assert (r.status, r.json()) == (200, {"ok": "paused: job good"})
    stored = (await client.get(PAUSE_PREFIX + ("any", "wg", "good"))).value
    assert stored["by"].startswith("status page on ")
    await wait_for(lambda: model.paused(next(r for r in model.jobs if r.path == ("good",))), what="the page sees it")
    html = (await call(app, "GET", "/job?" + JOB, headers=AUTH)).text
    assert "paused by status page on " in html

    # the job runs (its state names r1): trigger is refused, nothing written
    r = await call(app, "POST", "/api/jobs/trigger", body=JOB, headers=AUTH)
    assert (r.status, r.json()) == (400, {"error": "job good is running (on r1): not triggered"})
    await client.set(P(":.distkv.state.any.wg.good"), value={"node": None, "runs": 3, "stopped": 1})
    r = await call(app, "POST", "/api/jobs/trigger", body=JOB, headers=AUTH)
    assert (r.status, r.json()) == (200, {"ok": "triggered job good"})
    st = (await client.get(P(":.distkv.state.any.wg.good"))).value
    assert st["resume"] is True and st["triggered"].startswith("by status page on ")

    r = await call(app, "POST", "/api/jobs/resume", body=JOB, headers=AUTH)
    assert (r.status, r.json()) == (200, {"ok": "resumed: job good"})
    assert "value" not in await client.get(PAUSE_PREFIX + ("any", "wg", "good"))
    r = await call(app, "POST", "/api/jobs/pause", body="k=any&g=wg&p=no.such", headers=AUTH)
    assert (r.status, r.json()) == (404, {"error": "no job stored at no.such"})
    r = await call(app, "POST", "/api/jobs/pause", body="k=any&g=wg", headers=AUTH)
    assert r.status == 400


async def test_a_paused_job_and_garbage_pauses_on_the_page(page):  # noqa: F811
    model, app, client = page
    await client.set(PAUSE_PREFIX + ("any", "wg"), value=["garbage", 1])  # the whole group, by hand
    await client.set(PAUSE_PREFIX + ("any", "wg", "good", "deeper"), value={"at": "never"})
    await wait_for(lambda: model.pauses.get(("any", "wg")) is not None, what="the pause")
    row = why_of(model, "good")
    assert row["state"] == "running"  # its run goes on
    assert row["paused"] == "paused with its group by ?; `run resume` to go on"
    r = await call(app, "GET", "/")
    assert r.status == 200
    await client.delete(PAUSE_PREFIX + ("any", "wg"))
    await wait_for(lambda: ("any", "wg") not in model.pauses, what="the pause lifted")
    assert why_of(model, "good")["paused"] is None


def test_the_page_offers_job_actions():
    from distkv_ext.web._actions import ACTIONS

    assert [a.name for a in ACTIONS.values() if a.kind == "job"] == ["trigger", "pause", "resume"]
