"""The placement options on the command line: ``run set --require-tag /
--prefer-tag`` and ``run all --tag`` (real ``distkv`` command, the
session's servers)."""

import json

from tests.helpers import run_distkv


def _get(node, path):
    r = node.run("run", "get", path, "-g", "tg", "-o", "json")
    assert r.returncode == 0, r.err
    return json.loads(r.out)


def test_run_set_tags_replace_clear_and_refuse(node):
    node.run("code", "set", "tg.one", "-s", "-", input="return 1")
    r = node.run(
        "run", "set", "t.a", "-c", "tg.one", "-g", "tg", "--require-tag", "relay", "--require-tag", "room=kitchen"
    )
    assert r.returncode == 0, r.err
    assert _get(node, "t.a")["require_tags"] == ["relay", "room=kitchen"]
    assert node.run("run", "set", "t.a", "-g", "tg", "--prefer-tag", "gpu").returncode == 0
    v = _get(node, "t.a")
    assert (v["require_tags"], v["prefer_tags"]) == (["relay", "room=kitchen"], ["gpu"])  # not given: kept
    assert node.run("run", "set", "t.a", "-g", "tg", "--require-tag", "-").returncode == 0
    assert "require_tags" not in _get(node, "t.a") and _get(node, "t.a")["prefer_tags"] == ["gpu"]
    for bad in ("a b", "x" * 65, "", "=v"):
        r = node.run("run", "set", "t.a", "-g", "tg", "--require-tag", bad)
        assert r.returncode == 2 and "--require-tag" in r.err and "Traceback" not in r.err, (bad, r.err)
    assert _get(node, "t.a")["prefer_tags"] == ["gpu"]  # nothing written


def test_run_all_refuses_a_bad_tag_before_it_starts(node, tmp_path):
    r = node.run("run", "all", "-g", "tg", "--tag", "bad tag")
    assert r.returncode == 2 and "--tag" in r.err and "is no tag" in r.err, r.err
    cfg = tmp_path / "bad.yaml"
    with open(node.configs[0]) as f:
        cfg.write_text(f.read() + "\nrunner:\n  tags: [1, 2]\n")
    r = run_distkv("-c", str(cfg), "client", "run", "all", "-g", "tg")
    assert r.returncode == 2 and "runner.tags: 1 is no tag" in r.err, r.err
