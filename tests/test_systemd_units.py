"""The unit files in systemd/ run the commands they say, as Type=notify."""

import configparser
import os
import shlex

import pytest

from distkv_ext.run.client import cli

UNITS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "systemd")


@pytest.mark.parametrize("unit", sorted(os.listdir(UNITS)))
def test_unit(unit):
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str
    cp.read(os.path.join(UNITS, unit))
    svc = cp["Service"]
    assert svc["Type"] == "notify" and svc["Restart"] == "always" and int(svc["WatchdogSec"]) > 0
    argv = shlex.split(svc["ExecStart"])
    assert argv[1:5] == ["client", "run", "all", "-g"]
    # the options exist on the real command
    opts = {o for p in cli.commands["all"].params for o in getattr(p, "opts", [])}
    assert all(a in opts for a in argv[4:] if a.startswith("-"))
