"""The run-time repairs of upstream packages are for the installed releases.

Each repair replaces code of one release of one package; after a
dependency update it could silently repair nothing, or break.  These
tests fail then, so the repair is looked at again.
"""

import importlib

import pytest

from distkv_ext.codekit import upstream

PINS = {}
with open("constraints.txt", encoding="utf-8") as f:
    for line in f:
        if "==" in line and not line.startswith("#"):
            name, ver = line.strip().split("==")
            PINS[name.lower().replace("_", "-")] = ver


@pytest.mark.parametrize("name", upstream.REPAIRS)
def test_repair_targets_the_pinned_and_installed_release(name):
    mod = importlib.import_module(f"distkv_ext.codekit.upstream.{name}")
    assert mod.PACKAGE in PINS, f"{mod.PACKAGE} is repaired but not pinned in constraints.txt"
    assert mod.TARGET == PINS[mod.PACKAGE], (
        f"{name} repairs {mod.PACKAGE} {mod.TARGET}, constraints.txt pins {PINS[mod.PACKAGE]}"
    )


def test_no_repair_is_for_another_release():
    assert upstream.check_versions() == []


def test_client_repairs_do_not_load_moat_mqtt():
    """Every `distkv client` command applies the client repairs; moat-mqtt
    (~50 ms to import) is for servers only."""
    import subprocess
    import sys

    code = "import sys; from distkv_ext.codekit import upstream; upstream.apply_client(); print('moat.mqtt.client' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
