"""DistKV 0.65.0's source distribution, fetched through pip's configured
index, for running DistKV's own tests against this project
(test_distkv_compat.py).  Nothing of it is kept in this repository.

`pip download distkv==0.65.0 --no-binary :all:` refuses the sdist here
(building its metadata yields version 0.0.0), but pip finds it first:
with ``-vvv`` it logs every candidate as ``Found link URL (from INDEX)
..., version: V``.  So pip is asked (its index, mirrors, certificate and
proxy settings apply), the sdist's link is taken from its log and the
file is downloaded with the certificate pip is configured with.  It must
match `SHA256` (and the ``#sha256=`` fragment of the link, if the index
gives one), and is cached in ``~/.cache/distkv-code/`` (or below
``$XDG_CACHE_HOME``).  Every way this can fail raises `SdistUnavailable`
with pip's last words.
"""

import hashlib
import os
import pathlib
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

NAME = "distkv-0.65.0"
#: sha256 of distkv-0.65.0.tar.gz as published (checked against PyPI's
#: JSON simple API, 2026-12-03)
SHA256 = "562dd6b4f6a8c3f372815fe66e4f85ab5ce999d2cefe79966487ca4a558a8ef5"

#: DistKV's feature tests for procedures, modules and runners, and the
#: import lines to switch in them (only these: anything else that differs
#: from what was written for DistKV is a finding, not a fix)
TESTS = ("test_feature_code.py", "test_feature_runner.py", "test_feature_singlerunner.py", "test_feature_allrunner.py")
SWITCH = {
    "from distkv.code import CodeRoot, ModuleRoot\n": (
        "from distkv_ext.code import CodeRoot\nfrom distkv_ext.module import ModuleRoot\n"
    ),
    "from distkv.code import CodeRoot\n": "from distkv_ext.code import CodeRoot\n",
    "from distkv.runner import AnyRunnerRoot\n": "from distkv_ext.run import AnyRunnerRoot\n",
    "from distkv.runner import SingleRunnerRoot\n": "from distkv_ext.run import SingleRunnerRoot\n",
    "from distkv.runner import AllRunnerRoot\n": "from distkv_ext.run import AllRunnerRoot\n",
}

_LINK = re.compile(r"Found link (\S+/" + re.escape(NAME) + r"\.tar\.gz(?:#\S*)?) \(from ")


class SdistUnavailable(RuntimeError):
    """DistKV's sdist could not be had (network, index, checksum)."""


def cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "distkv-code"


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _pip_setting(name: str) -> str | None:
    """A setting of pip's configuration (``PIP_NAME`` or ``pip config``)."""
    env = os.environ.get("PIP_" + name.upper().replace("-", "_"))
    if env:
        return env
    out = _pip("config", "list", timeout=60).stdout
    m = re.search(r"^[^=\n]*\." + re.escape(name) + r"='([^'\n]*)'$", out, re.M)
    return m.group(1) if m else None


def find_link() -> str:
    """The sdist's URL, as pip's configured index gives it."""
    with tempfile.TemporaryDirectory() as d:
        r = _pip(
            "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation", "-d", d, "-vvv", "distkv==0.65.0"
        )
    links = _LINK.findall(r.stdout + r.stderr)
    if not links:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise SdistUnavailable(f"pip's index named no {NAME}.tar.gz (pip exit {r.returncode}):\n{tail}")
    return links[0]


def _opener() -> urllib.request.OpenerDirector:
    cert = _pip_setting("cert")
    ctx = ssl.create_default_context(cafile=cert) if cert else ssl.create_default_context()
    handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=ctx)]
    proxy = _pip_setting("proxy")
    if proxy:
        handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
    return urllib.request.build_opener(*handlers)


def fetch() -> pathlib.Path:
    """The verified sdist: from the cache, else downloaded (see the module doc)."""
    dest = cache_dir() / f"{NAME}.tar.gz"
    if dest.exists() and _sha256(dest) == SHA256:
        return dest
    link = find_link()
    url, _, fragment = link.partition("#")
    want = dict(kv.split("=", 1) for kv in fragment.split("&") if "=" in kv).get("sha256")
    if want is not None and want != SHA256:
        raise SdistUnavailable(f"the index says {NAME}.tar.gz has sha256 {want}, not {SHA256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(".part")
    try:
        with _opener().open(url, timeout=120) as resp, open(part, "wb") as f:
            shutil.copyfileobj(resp, f)
    except OSError as exc:
        raise SdistUnavailable(f"could not download {url}: {exc!r}") from exc
    got = _sha256(part)
    if got != SHA256:
        part.unlink()
        raise SdistUnavailable(f"{url} has sha256 {got}, not {SHA256}")
    part.replace(dest)
    return dest


def switched_tests(sdist: pathlib.Path, into: pathlib.Path) -> list[str]:
    """Unpack DistKV's tests (their directory and ``setup.cfg``, nothing of
    its packages: they would shadow the installed ones) into ``into``,
    switch the imports of `TESTS` to this project's; return their paths."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(f"{NAME}/tests/") or m.name == f"{NAME}/setup.cfg"]
        tar.extractall(into, members=members, filter="data")
    top = into / NAME
    for name in TESTS:
        path = top / "tests" / name
        text = path.read_text(encoding="utf-8")
        for old, new in SWITCH.items():
            text = text.replace(old, new)
        left = [line for line in text.splitlines() if re.match(r"from distkv\.(code|runner) import", line)]
        if left or "from distkv_ext." not in text:
            raise AssertionError(f"{name}: imports not switched: {left or 'none found'}")
        path.write_text(text, encoding="utf-8")
    return [f"tests/{name}" for name in TESTS]
