"""``run web`` and ``run all`` as real processes on the session's real
servers: the page, its JSON API and metrics with a real runner, the
runner's own metrics and start-up summary, one daemon for every kind of
job, tracebacks in ``run logs`` / ``run why``, SIGTERM, and what is
refused on the command line."""

import http.client as httpclient
import json
import os
import socket
import time

import pytest
from moat.util import P

from distkv_ext.devtools.ports import free_ports
from distkv_ext.run import WEB_PREFIX
from tests.helpers import Daemon, WebServer, http, query, wait_until

pytestmark = pytest.mark.slow

FAIL = 'print("about to fail")\nraise ValueError("broken <b>on purpose</b>")'


@pytest.fixture
def procs(tmp_path):
    started = []

    def start(cls, *args, **kw):
        p = cls(*args, log=str(tmp_path / f"p{len(started)}.log"), **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)


def _job(jobs, path):
    return next((j for j in jobs if j["path"] == path), None)


def test_page_api_metrics_with_a_real_runner(node, procs, tmp_path):
    node.run("code", "set", "wp.ok", "-s", "-", input='print("hello")\nreturn 42')
    node.run("code", "set", "wp.fail", "-s", "-", input=FAIL)
    web = procs(WebServer, node.configs[1], "-g", "wp")
    (mport,) = free_ports(1)
    d = procs(Daemon, node.configs[0], "-g", "wp", "--name", "wr1", "--metrics", f"127.0.0.1:{mport}")
    for job, code in (("okjob", "wp.ok"), ("badjob", "wp.fail")):
        r = node.run("run", "set", job, "-c", code, "-g", "wp", "-t", "now")
        assert r.returncode == 0, r.err

    def settled():
        jobs = web.json("/api/jobs")
        ok, bad = _job(jobs, "okjob"), _job(jobs, "badjob")
        return jobs if ok and bad and ok["state"] == "done" and bad["state"] in ("failed", "gave up") else None

    jobs = wait_until(settled, timeout=60, what="both jobs to have run")
    ok, bad = _job(jobs, "okjob"), _job(jobs, "badjob")
    assert (ok["group"], ok["kind"], ok["node"], ok["result"]) == ("wp", "any", "wr1", "42")
    assert "broken <b>on purpose</b>" in bad["error"] and "retry" in bad["why"]
    members = wait_until(lambda: web.json("/api/members"), what="the runner heard")
    assert [(m["name"], m["live"]) for m in members] == [("wr1", True)]
    errs = wait_until(lambda: [e for e in web.json("/api/errors") if e["job"] and e["job"]["path"] == "badjob"])
    assert "ValueError" in errs[0]["message"]
    status, headers, page = web.get("/")
    assert status == 200 and "okjob" in page and "broken &lt;b&gt;on purpose&lt;/b&gt;" in page
    assert "broken <b>" not in page and "read-only" in page
    status, _, page = web.get("/job?" + bad["query"])
    assert status == 200 and "about to fail" in page and "ValueError" in page
    _, headers, text = web.get("/metrics")
    assert headers["content-type"].startswith("text/plain")
    assert 'distkv_run_jobs{group="wp",kind="any",state="done"} 1.0' in text
    # the runner's own metrics, fed by its engine
    _, _, text = http(f"http://127.0.0.1:{mport}/metrics")
    starts = [line for line in text.splitlines() if line.startswith('distkv_run_starts_total{group="wp",kind="any"}')]
    assert starts and float(starts[0].split()[-1]) >= 2
    assert 'distkv_run_failures_total{group="wp",kind="any"}' in text
    assert 'distkv_run_jobs{group="wp",kind="any",state="done"} 1.0' in text
    # the runner said once what it serves, and where the page is
    with open(d.log, encoding="utf-8") as f:
        said = f.read()
    assert "distkv-code runner wr1 of group wp: serving any-node, all-node and single-node jobs" in said
    assert f"status page: {web.url}" in said and f"metrics: http://127.0.0.1:{mport}/metrics" in said
    assert said.count("jobs found:") == 1
    # the traceback of the failed run: run logs and run why
    r = node.run("run", "logs", "badjob", "-g", "wp")
    assert "! ValueError: broken <b>on purpose</b>" in r.out and "about to fail" in r.out
    assert 'raise ValueError("broken <b>on purpose</b>")' in r.out and "_lifecycle" not in r.out
    r = node.run("run", "why", "badjob", "-g", "wp")
    assert "traceback of the last run:" in r.out and 'File "<distkv:proc wp.fail>", line 2' in r.out
    # a change reaches an open event stream
    host, port = web.url.split("/")[2].split(":")
    conn = httpclient.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/events", headers={"Accept": "text/event-stream"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")
    node.run("run", "set", "okjob", "-g", "wp", "-t", "now")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = resp.fp.readline().decode()
        if line.startswith("data: ") and "any|wp||okjob" in line:
            break
    else:
        raise AssertionError("no event for okjob")
    conn.close()
    # SIGTERM: exit 0, its announcement is withdrawn (the servers are shared:
    # pages of other tests, killed with -9, may have left theirs)
    mine = f"{socket.gethostname()}:{port}"

    async def announced(c):
        return [str(r.value.get("url")) async for r in c.get_tree(WEB_PREFIX)]

    assert web.url in query(node.configs[0], announced)
    assert web.term() == 0
    assert web.url not in query(node.configs[0], announced), mine


def test_one_daemon_runs_every_kind_of_job_of_its_machine(node, procs):
    node.run("code", "set", "wp.tick", "--async", "-s", "-", input="import anyio\nawait anyio.sleep(600)")
    procs(Daemon, node.configs[0], "-g", "ek", "--name", "ekn")
    for args in (["anyjob"], ["alljob", "--all-nodes"], ["mine", "-n", "ekn"], ["theirs", "-n", "elsewhere"]):
        r = node.run("run", "set", args[0], *args[1:], "-c", "wp.tick", "-g", "ek", "-t", "now")
        assert r.returncode == 0, r.err

    def running():
        r = node.run("run", "list", "-g", "ek", "-o", "json")
        rows = {x["path"]: x for x in json.loads(r.out)}
        return rows if all(rows.get(j, {}).get("running_on") == ["ekn"] for j in ("anyjob", "alljob", "mine")) else None

    rows = wait_until(running, timeout=60, what="any-, all- and single-node jobs on ekn")
    assert not rows["theirs"]["running_on"]


def _state(node, *args):
    r = node.run("run", "state", *args, "-o", "json")
    assert r.returncode == 0, r.err
    return json.loads(r.out)


def test_two_single_node_runners_of_one_node_do_not_both_run(node, procs):
    """The second runner of a node refuses to start, naming the first
    (its host and pid, from its runner record); the first keeps running
    its job: the same run, not restarted."""
    node.run("code", "set", "wp.forever", "--async", "-s", "-", input="import anyio\nawait anyio.sleep(600)")
    r = node.run("run", "set", "tw", "-c", "wp.forever", "-g", "sn", "-n", "twin", "-t", "now")
    assert r.returncode == 0, r.err
    a = procs(Daemon, node.configs[0], "-g", "sn", "-n", "twin")
    before = wait_until(
        lambda: (lambda s: s if s.get("node") == "twin" else None)(_state(node, "tw", "-g", "sn", "-n", "twin")),
        what="tw running on twin",
    )
    b = procs(Daemon, node.configs[1], "-g", "sn", "--name", "twin")  # every kind: twin's single-node jobs too
    assert b.proc.wait(30) == 2
    with open(b.log, encoding="utf-8") as f:
        text = f.read()
    assert (
        f"another runner of group at.twin.sn is called twin (host {socket.gethostname()}, pid {a.proc.pid}, running since "
        in text
    ), text
    assert "give each runner its own --name" in text
    assert a.alive()
    after = _state(node, "tw", "-g", "sn", "-n", "twin")
    assert (after["node"], after["runs"], after["started"]) == ("twin", before["runs"], before["started"]), (
        before,
        after,
    )


def test_refused_on_the_command_line(node, tmp_path):
    r = node.run("run", "all")
    assert r.returncode == 2 and "Missing option '-g'" in r.err
    r = node.run("run", "set", "x", "-c", "wp.ok", "-t", "now")
    assert r.returncode == 2 and "Missing option '-g'" in r.err
    r = node.run("run", "web", "--allow-actions", "--bind", "127.0.0.1:0")
    assert r.returncode == 2 and "runner.web_token_file" in r.err
    r = node.run("run", "web", "--bind", "nonsense:port")
    assert r.returncode == 2 and "HOST:PORT" in r.err
    cfg = tmp_path / "tok.yaml"
    token = tmp_path / "token"
    token.write_text("too-short")
    os.chmod(token, 0o600)
    with open(node.configs[0], encoding="utf-8") as f:
        cfg.write_text(f.read() + f"\nrunner:\n  web_token_file: {token}\n")
    r = node.run("run", "web", "--allow-actions", "--bind", "127.0.0.1:0", config=str(cfg))
    assert r.returncode == 2 and "at least 16" in r.err


def test_actions_through_a_real_server(node, procs, tmp_path):
    token = tmp_path / "token"
    token.write_text("a-real-token-0123456789abcdef\n")
    os.chmod(token, 0o600)
    cfg = tmp_path / "web.yaml"
    with open(node.configs[0], encoding="utf-8") as f:
        cfg.write_text(f.read() + f"\nrunner:\n  web_token_file: {token}\n")

    async def plant(c):
        await c.set(P(":.distkv.error.webtest.1"), value={"path": P(":.distkv.run.any.wa.j"), "subsystem": "run"})

    query(node.configs[0], plant)
    web = procs(WebServer, str(cfg), "--allow-actions", "-g", "wa")
    wait_until(lambda: web.json("/api/errors"), what="the planted error")
    status, _, body = web.get("/api/errors/ack", method="POST", body="error=webtest.1")
    assert status == 401
    status, _, body = web.get(
        "/api/errors/ack",
        method="POST",
        body="error=webtest.1",
        headers={"Authorization": "Bearer a-real-token-0123456789abcdef"},
    )
    assert status == 200, body
    wait_until(lambda: not web.json("/api/errors"), what="the error acknowledged")


def test_page_exits_5_when_its_server_dies(procs, tmp_path):
    """It kills its server: a node of its own, not the session's."""
    import signal
    import subprocess

    from tests.helpers import running_node

    with running_node(tmp_path / "own", n=1) as own:
        config = own.configs[0]
        web = procs(WebServer, config)
        pids = subprocess.run(["pgrep", "-f", f"{config} server"], capture_output=True, check=False).stdout.split()
        assert pids
        for p in pids:
            os.kill(int(p), signal.SIGKILL)
        assert web.proc.wait(30) == 5
        with open(web.log, encoding="utf-8", errors="replace") as f:
            assert "Error: lost the connection to the DistKV server" in f.read()


def test_page_tells_systemd(node, procs, tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(60)
    try:
        web = procs(WebServer, node.configs[0], env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"})
        msgs = []
        while not any(m.startswith("READY=1") for m in msgs):
            msgs.append(sock.recv(4096).decode())
        assert any(f"STATUS=serving {web.url}" in m for m in msgs)
        while not any("WATCHDOG=1" in m for m in msgs):
            msgs.append(sock.recv(4096).decode())
        assert web.term() == 0
        while not any(m.startswith("STOPPING=1") for m in msgs):
            msgs.append(sock.recv(4096).decode())
    finally:
        sock.close()


def test_a_dead_runner_s_job_shows_runner_gone(node, procs, tmp_path):
    """kill -9 of the only runner of a group: the page no longer shows its
    job running (the store still names the node; the group does not hear it)."""
    node.run("code", "set", "wp.forever", "--async", "-s", "-", input="import anyio\nawait anyio.sleep_forever()\n")
    web = procs(WebServer, node.configs[1], "-g", "wpg")
    d = procs(Daemon, node.configs[0], "-g", "wpg", "--name", "wg1", "--timeout", "2", "--heartbeat", "0.5")
    r = node.run("run", "set", "long", "-c", "wp.forever", "-g", "wpg", "-t", "now")
    assert r.returncode == 0, r.err
    job = wait_until(
        lambda: (lambda j: j if j and j["state"] == "running" else None)(_job(web.json("/api/jobs"), "long")),
        what="the job running on the page",
    )
    assert job["running_on"] == "wg1"
    d.kill()
    job = wait_until(
        lambda: (lambda j: j if j and j["state"] == "runner gone" else None)(_job(web.json("/api/jobs"), "long")),
        what="the page to see the runner gone",
    )
    assert job["running_on"] == "wg1" and "that runner is gone" in job["why"]
    assert "no runner of the group is running" in job["why"]
