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


def test_tracebacks_of_nested_exception_groups_format():
    """trio 0.21 replaced TracebackException.format with one that Python
    3.11 cannot call for the parts of an exception group (a TypeError, and
    an INTERNALERROR of pytest when a test fails with such a group)."""
    import traceback

    import trio  # noqa: F401  (its import installs the broken formatter)

    upstream.apply_library()
    try:
        raise ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("deep")]), KeyError("k")])
    except ExceptionGroup as exc:
        text = "".join(traceback.format_exception(exc))
    assert "ValueError: deep" in text and "KeyError: 'k'" in text and "inner" in text
