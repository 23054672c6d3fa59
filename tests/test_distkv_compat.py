"""DistKV 0.65.0's own feature tests for procedures, modules and runners
pass against this project, with only their imports switched.

The tests come from DistKV's sdist, fetched at test time through pip's
configured index (`tests.distkv_sdist`: nothing of DistKV's is kept
here); they run with pytest in a subprocess, with DistKV's own conftest
and ``setup.cfg`` (every warning an error), ignoring only the two
``pkg_resources`` deprecation warnings that setuptools gives when distkv
imports it (without that, nothing collects, ours or DistKV's).  When the
sdist cannot be had the test fails, it is not skipped.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import distkv_sdist

IGNORE = (
    "ignore:pkg_resources is deprecated:UserWarning",
    "ignore:pkg_resources is deprecated:DeprecationWarning",
)


@pytest.mark.slow  # fetches (first time) and runs DistKV's tests in a subprocess, 10-20 s
def test_distkvs_feature_tests_pass_with_switched_imports():
    try:
        sdist = distkv_sdist.fetch()
    except distkv_sdist.SdistUnavailable as exc:
        pytest.fail(f"DistKV's sdist cannot be had, so its tests cannot run: {exc}", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="distkv-tests-") as d:
        tests = distkv_sdist.switched_tests(sdist, Path(d))
        top = Path(d) / distkv_sdist.NAME
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(top),
            "-c",
            str(top / "setup.cfg"),
        ]
        for w in IGNORE:
            cmd += ["-W", w]
        r = subprocess.run(cmd + tests, cwd=top, capture_output=True, text=True, timeout=900, check=False)
    out = r.stdout + r.stderr
    summary = "\n".join(line for line in out.splitlines() if re.match(r"(PASSED|FAILED|ERROR)|=+ .* =+$|^tests/", line))
    assert r.returncode == 0, f"DistKV's tests failed (pytest exit {r.returncode}):\n{out[-6000:]}"
    assert re.search(r"\b6 passed\b", out) and not re.search(r"\b(skipped|xfailed|deselected)\b", out), summary
