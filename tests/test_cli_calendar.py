"""Calendar jobs through the real ``distkv`` command: ``run set --cron /
--at ...``, and ``run next``: the next start times of a calendar job
(text and JSON), of a repeating job, of one that does not start again,
and its errors; ``run why`` and ``run list`` show the next start."""

import datetime as dt
import json
import time

import pytest
from moat.util import P

from distkv_ext.run._calendar import jitter_delay
from tests.helpers import query

pytestmark = pytest.mark.usefixtures("node")


@pytest.fixture(scope="module", autouse=True)
def jobs(node):
    node.run("code", "set", "nx.p", "-s", "-", input="return 1")
    now = time.time()

    async def write(c):
        base = P(":.distkv.run.any.nxg")
        await c.set(
            base + ("daily",),
            value={"code": P("nx.p"), "cron": "30 6 * * *", "tz": "Europe/Berlin", "jitter": 600, "written": now},
        )
        await c.set(base + ("rep",), value={"code": P("nx.p"), "target": now + 3600, "repeat": 60})
        await c.set(base + ("idle",), value={"code": P("nx.p"), "target": 0})

    query(node.configs[0], write)
    return now


def test_next_of_a_calendar_job_text_and_json(node):
    r = node.run("run", "next", "daily", "-g", "nxg", "-n", "3")
    assert (r.returncode, r.err) == (0, "")
    lines = r.out.splitlines()
    assert len(lines) == 3
    for line in lines:
        t = dt.datetime.fromisoformat(line)
        assert t.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))  # Berlin
        slot = t.replace(minute=30, second=0, microsecond=0)
        assert (slot.hour, t - slot < dt.timedelta(minutes=10)) == (6, True)
        assert t.timestamp() == pytest.approx(slot.timestamp() + jitter_delay("daily", slot.timestamp(), 600), abs=1)
    r = node.run("run", "next", "daily", "-g", "nxg", "-o", "json")
    got = json.loads(r.out)
    assert len(got) == 5 and got[:3] == lines  # default 5; the same times


def test_next_of_a_repeating_job_and_of_one_that_does_not_start(node, jobs):
    r = node.run("run", "next", "rep", "-g", "nxg", "-n", "2", "-o", "json")
    a, b = (dt.datetime.fromisoformat(x).timestamp() for x in json.loads(r.out))
    assert a == pytest.approx(jobs + 3600, abs=1) and b - a == pytest.approx(60, abs=1)
    r = node.run("run", "next", "idle", "-g", "nxg", "-o", "json")
    assert r.outcome == (0, "[]\n", "job idle does not start again: no target\n")
    r = node.run("run", "next", "idle", "-g", "nxg")
    assert r.outcome == (0, "", "job idle does not start again: no target\n")


def test_next_errors(node):
    r = node.run("run", "next", "nothere", "-g", "nxg")
    assert (r.returncode, r.err) == (3, "Error: no job stored at nothere\n")
    r = node.run("run", "next", "daily", "-g", "nxg", "-n", "0")
    assert r.returncode == 2 and r.err.endswith(
        "Error: Invalid value for '-n' / '--count': 0 is not in the range 1<=x<=1000.\n"
    )
    r = node.run("run", "next", "daily", "-g", "nxg", "--node", "box", "--all-nodes")
    assert r.returncode == 2 and "not both" in r.err


def test_why_and_list_show_the_next_start(node):
    first = node.run("run", "next", "daily", "-g", "nxg", "-n", "1").out.strip()
    r = node.run("run", "why", "daily", "-g", "nxg", "--no-listen")
    assert r.returncode == 0
    assert f"  calendar: cron 30 6 * * * (Europe/Berlin); next start {first}\n" in r.out
    assert "starts in " in r.out and "(cron 30 6 * * *: " in r.out
    rows = {x["path"]: x for x in json.loads(node.run("run", "list", "-g", "nxg", "-o", "json", "--no-listen").out)}
    assert rows["daily"]["next"] == first


def test_set_a_calendar_job(node):
    r = node.run(
        "run", "set", "cal.a", "-c", "nx.p", "-g", "calg",
        "--cron", "0  7 * * 1-5", "--tz", "Europe/Berlin", "--jitter", "5m", "--overlap", "queue",
    )  # fmt: skip
    assert r.outcome == (0, "created: cal.a\n", "")
    got = json.loads(node.run("run", "get", "cal.a", "-g", "calg", "-o", "json").out)
    assert {k: got[k] for k in ("cron", "tz", "jitter", "overlap")} == {
        "cron": "0 7 * * 1-5",
        "tz": "Europe/Berlin",
        "jitter": 300,
        "overlap": "queue",
    }
    assert "target" not in got and "repeat" not in got and got["written"] > 0
    # a sun time: needs a place; the zone stays
    r = node.run("run", "set", "cal.a", "-g", "calg", "--at", "sunset-15m")
    assert (r.returncode, r.err) == (
        4,
        "Error: a sun time needs a location (LATITUDE,LONGITUDE; or runner.location)\n",
    )
    r = node.run("run", "set", "cal.a", "-g", "calg", "--at", "sunset-15m", "--location", "52.5,13.4")
    assert r.outcome == (0, "updated: cal.a\n", "")
    got = json.loads(node.run("run", "get", "cal.a", "-g", "calg", "-o", "json").out)
    assert (got["at"], got["location"], got["tz"], "cron" in got) == (
        "sunset-900",
        [52.5, 13.4],
        "Europe/Berlin",
        False,
    )
    assert node.run("run", "next", "cal.a", "-g", "calg", "-n", "2").out.count("\n") == 2
    # back to a plain job
    r = node.run("run", "set", "cal.a", "-g", "calg", "--at", "", "-t", "never")
    assert r.outcome == (0, "updated: cal.a\n", "")
    got = json.loads(node.run("run", "get", "cal.a", "-g", "calg", "-o", "json").out)
    assert not {"at", "tz", "location", "jitter", "overlap"} & set(got) and got["target"] == 0
