"""The status page in a real browser (headless Chromium, Debian's, driven
by Selenium), against real servers, runner daemons and ``run web``:
a job appears and runs, moves when its runner is killed with -9, an
error is acknowledged; hostile text stays text.  The test saves a
screenshot (``status-page.png`` in its temporary directory; set
``DISTKV_CODE_SCREENSHOT=PATH`` to keep one)."""

import os
import shutil
import subprocess

import pytest
from selenium.webdriver.common.by import By

from distkv_ext.devtools.browser import headless_chromium
from tests.helpers import Daemon, WebServer, wait_until

pytestmark = pytest.mark.slow

TOKEN = "browser-test-token-0123456789"
LOOP = "import anyio\nprint('started')\nwhile True:\n    await anyio.sleep(0.5)"
HOSTILE = "<img src=x onerror=window.__xss=1>"
FAIL = "raise RuntimeError('<script>window.__xss=2</script> on purpose')"


def _text(driver, css):
    """The text of the first element matching ``css`` ("" if none), read
    in one step: the live page replaces elements at any time."""
    return driver.execute_script("var e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)


def _member(driver, name):
    """The text of the row of member ``name`` in the members table."""
    return driver.execute_script(
        "var n = arguments[0], rows = document.querySelectorAll('#members tbody tr');"
        "for (var i = 0; i < rows.length; i++) { if (rows[i].cells[0].innerText === n) return rows[i].innerText; }"
        "return '';",
        name,
    )


def _row(driver, path):
    """(state, node) of the job row of ``path`` in the live table, or None."""
    cells = driver.execute_script(
        "var r = document.querySelector(arguments[0]);"
        "return r ? Array.from(r.cells).map(function (c) { return c.innerText; }) : null;",
        f'#jobs-table tbody[data-key="any|wb||{path}"] tr',
    )
    return None if not cells else (cells[4].split()[0], cells[3].strip())


def test_page_follows_jobs_and_acknowledges_an_error(node, tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    os.chmod(token, 0o600)
    cfg = tmp_path / "web.yaml"
    with open(node.configs[0], encoding="utf-8") as f:
        cfg.write_text(f.read() + f"\nrunner:\n  web_token_file: {token}\n")
    node.run("code", "set", "wb.loop", "--async", "-s", "-", input=LOOP)
    node.run("code", "set", "wb.fail", "-s", "-", input=FAIL)
    started = []
    try:
        web = WebServer(str(cfg), "--allow-actions", "-g", "wb", log=str(tmp_path / "web.log"))
        started.append(web)
        runners = {}
        for i, name in enumerate(("wb1", "wb2")):
            runners[name] = Daemon(node.configs[i], "-g", "wb", "--name", name, log=str(tmp_path / f"{name}.log"))
            started.append(runners[name])
        with headless_chromium() as d:
            d.get(web.url)
            assert d.find_element(By.CSS_SELECTOR, "h1").text == "distkv runners"
            wait_until(lambda: d.find_element(By.ID, "live").is_displayed(), what="the event stream")
            # log in with the token (a form: the token goes in the body)
            d.find_element(By.NAME, "token").send_keys(TOKEN)
            d.find_element(By.CSS_SELECTOR, "form.login button").click()
            wait_until(lambda: d.find_elements(By.CSS_SELECTOR, "form[action='/logout']"), what="logged in")
            wait_until(lambda: d.find_element(By.ID, "live").is_displayed(), what="the event stream again")
            # a job appears and runs, without reloading the page
            r = node.run("run", "set", "mover", "-c", "wb.loop", "-g", "wb", "-t", "now", "-i", HOSTILE)
            assert r.returncode == 0, r.err
            _, first = wait_until(
                lambda: (lambda row: row if row and row[0] == "running" and row[1] else None)(_row(d, "mover")),
                what="the job running on the page",
            )
            assert first in runners
            assert HOSTILE in _text(d, 'tbody[data-key="any|wb||mover"] .info')
            # its runner dies: the page shows it running elsewhere
            runners[first].kill()
            other = next(n for n in runners if n != first)
            wait_until(lambda: _row(d, "mover") == ("running", other), timeout=60, what="the job moving on the page")
            wait_until(lambda: "gone" in _member(d, first), what="the killed runner shown gone")
            # a failing job's error shows up; acknowledge it
            node.run("run", "set", "failer", "-c", "wb.fail", "-g", "wb", "-t", "now")
            wait_until(lambda: d.find_elements(By.CSS_SELECTOR, "#errors .err button.act-ack"), what="the error")
            err = d.find_element(By.CSS_SELECTOR, "#errors .err")
            assert "<script>window.__xss=2</script> on purpose" in err.text
            d.save_screenshot(str(tmp_path / "status-page.png"))
            err.find_element(By.CSS_SELECTOR, "button.act-ack").click()
            wait_until(lambda: "No open errors." in _text(d, "#errors"), what="the error acknowledged")
            assert d.execute_script("return window.__xss === undefined")
            # the job's own page, with its output
            d.find_element(By.LINK_TEXT, "mover").click()
            wait_until(lambda: "started" in _text(d, "#job-output"), what="the job's output")
            severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
            assert not severe, severe
        keep = os.environ.get("DISTKV_CODE_SCREENSHOT")
        if keep:
            shutil.copy(tmp_path / "status-page.png", keep)
    finally:
        for p in started:
            if p.proc.poll() is None:
                p.proc.terminate()  # the page withdraws its announcement
                try:
                    p.proc.wait(30)
                except subprocess.TimeoutExpired:
                    p.proc.kill()
                    p.proc.wait(10)
