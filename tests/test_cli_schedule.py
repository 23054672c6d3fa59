"""``run set``'s calendar, placement, limit and argument options, through
the real ``distkv`` command: what is stored, and the exact refusals."""

import json

import pytest
import yaml

pytestmark = pytest.mark.usefixtures("node")

G = ("-g", "schedg")


@pytest.fixture(scope="module", autouse=True)
def procs(node):
    node.run("code", "set", "sch.noop", "-s", "-", input="return 1")
    node.run("code", "set", "sch.three", "--var", "a", "--var", "b", "--var", "c", "-s", "-", input="return a")


def _get(node, path, *extra):
    r = node.run("run", "get", path, *(extra or G), "-o", "json")
    assert r.returncode == 0, r.err
    return json.loads(r.out)


def test_cron_job_stores_its_zone_and_policies(node):
    r = node.run(
        "run", "set", "sch.cron", "-c", "sch.noop", *G, "--cron", "30  6 * * 1-5", "--tz", "Europe/Berlin",
        "--jitter", "5m", "--overlap", "queue", "--catch-up", "none", "--catch-up-window", "2h",
    )  # fmt: skip
    assert (r.returncode, r.out, r.err) == (0, "created: sch.cron\n", "")
    got = _get(node, "sch.cron")
    assert {k: got[k] for k in ("cron", "tz", "jitter", "overlap", "catch_up", "catch_up_window")} == {
        "cron": "30 6 * * 1-5",
        "tz": "Europe/Berlin",
        "jitter": 300,
        "overlap": "queue",
        "catch_up": "none",
        "catch_up_window": 7200,
    }
    assert "target" not in got and "repeat" not in got
    # back to a start time: the calendar goes, all of it
    r = node.run("run", "set", "sch.cron", *G, "-t", "never", "-r", "60")
    assert r.out == "updated: sch.cron\n"
    got = _get(node, "sch.cron")
    assert not {"cron", "tz", "jitter", "overlap", "catch_up", "catch_up_window"} & set(got)
    assert (got["target"], got["repeat"]) == (0, 60)
    # and to the calendar again: target and repeat go
    node.run("run", "set", "sch.cron", *G, "--cron", "* * * * * */5", "--tz", "UTC")
    got = _get(node, "sch.cron")
    assert (got["cron"], got["tz"]) == ("* * * * * */5", "UTC")
    assert "target" not in got and "repeat" not in got


def test_zone_defaults_to_the_writers(node, tmp_path):
    r = node.run("run", "set", "sch.local", "-c", "sch.noop", *G, "--cron", "0 7 * * *", env={"TZ": "Asia/Tokyo"})
    assert r.returncode == 0, r.err
    assert _get(node, "sch.local")["tz"] == "Asia/Tokyo"
    cfg = tmp_path / "cfg.yaml"
    with open(node.configs[0], encoding="utf-8") as f:
        base = yaml.safe_load(f)
    base.setdefault("runner", {}).update(timezone="America/New_York", location={"latitude": 52.5, "longitude": 13.4})
    cfg.write_text(yaml.safe_dump(base))
    r = node.run("run", "set", "sch.sun", "-c", "sch.noop", *G, "--at", "Sunset - 15m", config=str(cfg))
    assert r.returncode == 0, r.err
    got = _get(node, "sch.sun")
    assert (got["at"], got["tz"], got["location"]) == ("sunset-900", "America/New_York", [52.5, 13.4])
    r = node.run("run", "set", "sch.sun", *G, "--at", "dawn", "--location", "-33.87,151.21", "--tz", "Australia/Sydney")
    got = _get(node, "sch.sun")
    assert (got["at"], got["tz"], got["location"]) == ("dawn", "Australia/Sydney", [-33.87, 151.21])


def test_placement_limits_and_args(node):
    r = node.run(
        "run", "set", "sch.place", "-c", "sch.three", *G, "-t", "never", "--require-tag", "relay",
        "--require-tag", "room=kitchen", "--prefer-tag", "fast", "--limit", "bus=2", "--limit", "backup=1",
        "-a", "42", "-a", "x y", "--literal",
    )  # fmt: skip
    assert r.returncode == 2 and r.err.endswith("Error: Invalid value for --arg: 'x y' is not a Python literal\n")
    r = node.run(
        "run", "set", "sch.place", "-c", "sch.three", *G, "-t", "never", "--require-tag", "relay",
        "--require-tag", "room=kitchen", "--prefer-tag", "fast", "--limit", "bus=2", "--limit", "backup=1",
        "-a", "42", "-a", "'x y'", "-a", "[1, 2]", "--literal",
    )  # fmt: skip
    assert r.returncode == 0, r.err
    got = _get(node, "sch.place")
    assert got["require_tags"] == ["relay", "room=kitchen"]
    assert got["prefer_tags"] == ["fast"]
    assert got["limits"] == {"bus": 2, "backup": 1}
    assert got["args"] == [42, "x y", [1, 2]]
    node.run("run", "set", "sch.place", *G, "--require-tag", "-", "--limit", "-", "--no-args", "-a", "text")
    assert _get(node, "sch.place")["args"] == [42, "x y", [1, 2]]  # refused: both --arg and --no-args
    r = node.run("run", "set", "sch.place", *G, "--require-tag", "-", "--limit", "-", "-a", "x", "-a", "y", "-a", "z")
    assert r.out == "updated: sch.place\n"
    got = _get(node, "sch.place")
    assert "require_tags" not in got and "limits" not in got and got["args"] == ["x", "y", "z"]
    r = node.run("run", "set", "sch.place", *G, "--no-args")
    assert (r.returncode, r.err) == (4, "Error: procedure sch.three needs a, b, c: give them with -v/-e/-p\n")
    node.run("run", "set", "sch.place", *G, "--no-args", "-e", "a", "1", "-e", "b", "2", "-e", "c", "3")
    assert "args" not in _get(node, "sch.place")


@pytest.mark.parametrize(
    "args, status, message",
    [
        (
            ["--cron", "61 * * * *"],
            2,
            "Error: Invalid value for '--cron': '61 * * * *' is not a valid cron expression (like '30 6 * * 1-5')",
        ),
        (
            ["--cron", "* * *"],
            2,
            "Error: Invalid value for '--cron': '* * *' has 3 fields; cron takes 5 (minute hour day month weekday) or 6 (+seconds)",
        ),
        (
            ["--cron", "0 7 * * *", "--tz", "Mars/Olympus"],
            2,
            "Error: Invalid value for '--tz': unknown value 'Mars/Olympus' (an IANA name like Europe/Berlin)",
        ),
        (
            ["--at", "moonrise"],
            2,
            "Error: Invalid value for '--at': 'moonrise': say sunrise, sunset, dawn, dusk, noon, optionally with +/-OFFSET (sunset-15m)",
        ),
        (
            ["--at", "sunset+13h"],
            2,
            "Error: Invalid value for '--at': the offset of value 'sunset+13h' must be at most 43200, not 46800",
        ),
        (
            ["--at", "sunset", "--location", "91,0"],
            2,
            "Error: Invalid value for '--location': the latitude of value must be at most 90, not 91",
        ),
        (
            ["--at", "sunset", "--tz", "UTC"],
            4,
            "Error: a sun time needs a location (LATITUDE,LONGITUDE; or runner.location)",
        ),
        (["--cron", "0 7 * * *", "--at", "noon"], 2, "Error: give either --cron or --at, not both"),
        (["--cron", "0 7 * * *", "-r", "60"], 2, "Error: a calendar job (--cron/--at) has no -t/--repeat"),
        (["-t", "never", "--jitter", "1m"], 4, "Error: jitter: only for a calendar job (cron or at)"),
        (
            ["--cron", "0 7 * * *", "--jitter", "soon"],
            2,
            "Error: Invalid value for '--jitter': must be a duration like 90, 15m or 1h30m, not 'soon'",
        ),
        (
            ["--cron", "0 7 * * *", "--overlap", "wait"],
            2,
            "Error: Invalid value for '--overlap': 'wait' is not one of 'skip', 'queue', 'cancel'.",
        ),
        (
            ["-t", "never", "--limit", "bus"],
            2,
            "Error: Invalid value for '--limit': a limit is NAME=N (like backup=2), not 'bus'",
        ),
        (
            ["-t", "never", "--limit", "bus=two"],
            2,
            "Error: Invalid value for '--limit': the count of limit 'bus' must be a whole number, not 'two'",
        ),
        (
            ["-t", "never", "--limit", "bus=10001"],
            2,
            "Error: Invalid value for '--limit': limit 'bus' must be at most 10000, not 10001",
        ),
        (
            ["-t", "never", "--require-tag", "a b"],
            2,
            "Error: Invalid value for '--require-tag': 'a b' is no tag (like relay or room=kitchen)",
        ),
        (["-t", "never", "--literal"], 2, "Error: -l/--literal reads the values of --arg: give them too"),
    ],
)
def test_refusals_write_nothing(node, args, status, message):
    r = node.run("run", "set", "sch.bad", "-c", "sch.noop", *G, *args)
    assert (r.returncode, r.err.splitlines()[-1]) == (status, message)
    assert node.run("run", "get", "sch.bad", *G).returncode == 3


def test_deploy_jobs_yaml_learns_the_calendar(node, tmp_path):
    (tmp_path / "procs" / "schd").mkdir(parents=True)
    (tmp_path / "procs" / "schd" / "noop.py").write_text("return 1\n")
    (tmp_path / "procs" / "schd" / "two.py").write_text("# distkv:\n#   vars: [a, b]\nreturn a\n")
    (tmp_path / "jobs.yaml").write_text(
        "defaults: {group: schdep}\n"
        "jobs:\n"
        "- {path: schd.morning, code: schd.noop, cron: '30 6 * * 1-5', jitter: 2m, overlap: cancel}\n"
        "- {path: schd.dusk, code: schd.noop, at: dusk+10m, location: [48.1, 11.6], tz: Europe/Berlin}\n"
        "- {path: schd.placed, code: schd.two, require_tags: [relay], limits: {bus: 2}, args: [1, two]}\n"
    )
    r = node.run("code", "deploy", str(tmp_path), env={"TZ": "Europe/Vienna"})
    assert r.returncode == 0, r.err
    got = _get(node, "schd.morning", "-g", "schdep")
    assert (got["cron"], got["tz"], got["jitter"], got["overlap"]) == ("30 6 * * 1-5", "Europe/Vienna", 120, "cancel")
    got = _get(node, "schd.dusk", "-g", "schdep")
    assert (got["at"], got["tz"], got["location"]) == ("dusk+600", "Europe/Berlin", [48.1, 11.6])
    got = _get(node, "schd.placed", "-g", "schdep")
    assert (got["require_tags"], got["limits"], got["args"]) == (["relay"], {"bus": 2}, [1, "two"])
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n"
        "- {path: schd.morning, code: schd.noop, group: schdep, cron: '30 6 * * 1-5'}\n"
        "- {path: schd.bad, code: schd.noop, group: schdep,\n"
        "   cron: '99 * * * *'}\n"
    )
    r = node.run("code", "deploy", str(tmp_path), "--dry-run")
    assert r.returncode == 4
    assert (
        "jobs.yaml:4: job 2 (schd.bad): cron '99 * * * *' is not a valid cron expression (like '30 6 * * 1-5')" in r.err
    )
