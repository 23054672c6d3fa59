"""Every command has help; the host-CLI repairs behave."""

import asyncclick as click
import pytest
from moat.util import NotGiven, P, attrdict

from distkv_ext.code.client import cli as code_cli
from distkv_ext.codekit import upstream
from distkv_ext.codekit.upstream import moat_util as hostfix
from distkv_ext.module.client import cli as module_cli
from distkv_ext.run.client import cli as run_cli
from tests.helpers import run_distkv

GROUPS = {"code": code_cli, "module": module_cli, "run": run_cli}


def walk(group, prefix):
    yield prefix, group
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from walk(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_every_command_and_option_has_help(name):
    for path, cmd in walk(GROUPS[name], (name,)):
        assert (cmd.help or "").strip(), f"{' '.join(path)} has no help"
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "help":
                assert (p.help or "").strip(), f"{' '.join(path)} {p.opts} has no help"


def test_subcommand_help_through_real_distkv(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("connect:\n  port: 1\n")
    r = run_distkv("-c", str(cfg), "client", "code", "--help")
    assert r.returncode == 0
    text = r.stdout.decode()
    for sub in ("set", "get", "list", "delete", "diff", "call"):
        assert f"\n  {sub} " in text
    assert "Exit status: 0 success" in text


def test_parse_override():
    assert hostfix.parse_override("a.b=3") == (P("a.b"), 3)
    assert hostfix.parse_override("a.b=x y") == (P("a.b"), "x y")
    assert hostfix.parse_override("a.b=[1, 'two']") == (P("a.b"), [1, "two"])
    assert hostfix.parse_override("a.b") == (P("a.b"), NotGiven)


def test_apply_overrides_keeps_the_rest():
    cfg = attrdict(connect=attrdict(host="h", port=1), other=5)
    new = hostfix.apply_overrides(cfg, ["connect.port=27586", "other"])
    assert new == {"connect": {"host": "h", "port": 27586}}
    assert cfg.connect.port == 1  # the original is not modified


def test_loader_without_settings_does_not_crash():
    from moat.util.main import Loader

    upstream.apply_client()
    grp = Loader(name="x")
    ctx = click.Context(grp, obj=attrdict())
    assert grp.get_sub_ext(ctx) == (None, None, None, None)
