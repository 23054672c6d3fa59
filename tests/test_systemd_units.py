"""The unit files in systemd/: what they run, that they agree, and that
systemd rates them safe.

``systemd-analyze verify`` and ``systemd-analyze security --offline``
run where the tool is installed (./dev.sh installs Debian's ``systemd``
package when it is missing); the units are checked as instances, with
ExecStart pointing at this virtual environment's commands (verify needs
an executable there).
"""

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from distkv_ext.run.client import cli

UNITS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "systemd")
RUNNERS = ["distkv-run@.service", "distkv-run-all@.service", "distkv-run-node@.service"]
ALL = RUNNERS + ["distkv.service"]
DROPIN = os.path.join(UNITS, "distkv-run-node@.service.d", "hardware.conf.example")
BIN = os.path.dirname(sys.executable)
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")

#: what every unit must say: the hardening that jobs survive
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "RestrictSUIDSGID": "yes",
}


def service(unit):
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str
    cp.read(os.path.join(UNITS, unit))
    return cp


def lines(unit, section="Service"):
    """All key=value lines of a section, repeated keys included."""
    res, current = [], None
    with open(os.path.join(UNITS, unit)) as f:
        for raw in f:
            ln = raw.strip()
            if ln.startswith("["):
                current = ln[1:-1]
            elif current == section and ln and not ln.startswith("#"):
                res.append(ln)
    return res


@pytest.mark.parametrize("unit", RUNNERS)
def test_runner_unit_runs_the_daemon(unit):
    svc = service(unit)["Service"]
    assert svc["Type"] == "notify" and svc["Restart"] == "always" and int(svc["WatchdogSec"]) > 0
    argv = shlex.split(svc["ExecStart"])
    assert argv[1:5] == ["client", "run", "all", "-g"]
    opts = {o for p in cli.commands["all"].params for o in getattr(p, "opts", [])}
    assert all(a in opts for a in argv[4:] if a.startswith("-"))


@pytest.mark.parametrize("unit", ALL)
def test_unit_is_hardened_and_stops_on_usage_errors(unit):
    cp = service(unit)
    svc = cp["Service"]
    for k, v in HARDENING.items():
        assert svc.get(k) == v, f"{unit}: {k}={svc.get(k)!r}, want {v!r}"
    assert svc["User"] not in ("", "root") and svc["KillSignal"] == "SIGTERM"
    assert svc["RestartPreventExitStatus"] == "2"


def test_the_runner_units_agree():
    """Same restart policy, kill signal, ordering, user and hardening; only
    the description and the command differ."""
    ref = [ln for ln in lines(RUNNERS[0]) if not ln.startswith("ExecStart=")]
    for unit in RUNNERS[1:]:
        assert [ln for ln in lines(unit) if not ln.startswith("ExecStart=")] == ref, unit
        assert service(unit)["Unit"]["After"] == service(RUNNERS[0])["Unit"]["After"]
    assert "distkv.service" in service(RUNNERS[0])["Unit"]["After"].split()  # shipped: systemd/distkv.service


def _instances(tmp_path, with_dropin=False):
    """The units as instances in ``tmp_path``, ExecStart on this venv."""
    res = []
    for unit in ALL:
        name = unit.replace("@.", "@t.")
        with open(os.path.join(UNITS, unit)) as f:
            text = f.read().replace("/usr/local/bin/", BIN + "/")
        (tmp_path / name).write_text(text)
        if with_dropin and unit == "distkv-run-node@.service":
            d = tmp_path / f"{name}.d"
            d.mkdir()
            shutil.copy(DROPIN, d / "hardware.conf")
        res.append(name)
    return res


@needs_analyze
@pytest.mark.parametrize("with_dropin", [False, True], ids=["units", "with the hardware drop-in"])
def test_systemd_analyze_verify(tmp_path, with_dropin):
    for name in _instances(tmp_path, with_dropin):
        r = subprocess.run([ANALYZE, "verify", f"./{name}"], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), (name, r.stdout, r.stderr)


@needs_analyze
@pytest.mark.parametrize("with_dropin", [False, True], ids=["units", "with the hardware drop-in"])
def test_systemd_analyze_security_rates_each_ok(tmp_path, with_dropin):
    for name in _instances(tmp_path, with_dropin):
        r = subprocess.run(
            [ANALYZE, "security", "--offline=true", f"./{name}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", r.stdout)
        assert m, (name, r.stdout[-500:], r.stderr)
        assert float(m.group(1)) <= 4.0 and m.group(2) == "OK", (name, m.group(0))
