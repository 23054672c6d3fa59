"""DistKV 0.65's own runner, given runner entries with this project's
new fields (calendar, placement, limits, positional args), ignores them
harmlessly: an entry with a target runs as before, one with only a
calendar (no target) does not start, and the runner does not crash."""

import time

from moat.util import P

from tests.helpers import wait_for

NEW_FIELDS = {
    "cron": "* * * * * *",
    "tz": "Europe/Berlin",
    "jitter": 5,
    "overlap": "queue",
    "catch_up": "once",
    "catch_up_window": 60,
    "location": [52.5, 13.4],
    "require_tags": ["relay"],
    "prefer_tags": ["room=kitchen"],
    "limits": {"bus": 1},
    "args": [1, 2],
    "written": 1_800_000_000.0,
}


async def test_distkvs_runner_ignores_the_new_fields(client):
    from distkv.code import CodeRoot
    from distkv.runner import SingleRunnerRoot

    cr = await CodeRoot.as_handler(client)
    await cr.add(P("compat.p"), code="return 42", is_async=None)
    await SingleRunnerRoot.as_handler(client, subpath=("at", "n1", "g"), code=cr)
    base = P(":.distkv.run.at.n1.g")
    await client.set(base + ("calendar",), value={"code": P("compat.p"), **NEW_FIELDS})
    await client.set(base + ("targeted",), value={"code": P("compat.p"), "target": time.time(), **NEW_FIELDS})
    states = P(":.distkv.state.state.at.n1.g")  # DistKV 0.65 keeps its states one level deeper

    async def result(job):
        return (await client.get(states + (job,))).get("value", {}).get("result")

    await wait_for(lambda: result("targeted"), timeout=30, what="the run of the entry with a target")
    assert await result("targeted") == 42
    await client.set(base + ("later",), value={"code": P("compat.p"), "target": time.time()})
    await wait_for(lambda: result("later"), timeout=30, what="a later job: the runner still runs")
    assert await result("calendar") is None  # no target: DistKV's runner does not start it
