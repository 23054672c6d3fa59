"""Headless Chromium for the browser test, the benchmarks and the
README's screenshot: Debian's ``chromium`` driven through its
``chromium-driver`` with Selenium (``./dev.sh`` installs both where they
are missing).  No browser is downloaded.

The flags are those this machine needs (see the README): no sandbox (we
run as root in CI), no GPU, QUIC and background networking off (the
network is closed: Chromium would try to reach Google's hosts at every
start), a fresh profile in a temporary directory.
"""

import os
import shutil
import tempfile
from contextlib import contextmanager

__all__ = ["CHROMIUM", "CHROMEDRIVER", "FLAGS", "headless_chromium", "browser_missing"]

#: Debian's browser and driver.
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Command-line flags of every start.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def browser_missing():
    """None if Chromium and its driver are installed, else what to do."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return None
    return f"{', '.join(missing)} missing: apt-get install chromium chromium-driver (./dev.sh test does it as root)"


@contextmanager
def headless_chromium(width=1280, height=900):
    """A Selenium WebDriver of a fresh headless Chromium; quit on exit."""
    # lazy: selenium is a test dependency; nothing else of devtools needs it
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    problem = browser_missing()
    if problem:
        raise RuntimeError(problem)
    profile = tempfile.mkdtemp(prefix="distkv-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
