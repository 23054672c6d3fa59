"""Scale: N any-node jobs on five runner daemons, ours vs DistKV 0.65's runner.

``./dev.sh bench scale [--sizes 1000,5000,10000] [--servers 1] [--idle 300]
[--limit 600] [--builtin 200]``; real processes on loopback: a broker
(a process of its own, as in a deployment: this one parses the runners'
logs in threads; see `distkv_ext.devtools.broker`), one DistKV server
(``--servers 3``: three), five ``distkv client run all`` daemons of one
group, N any-node jobs repeating every 60 s that run a
trivial procedure.  Per N it prints:

* deploy: seconds of one ``code deploy`` of a jobs.yaml with all N jobs;
* all ran: seconds from the end of the deploy until every job has run once;
* RSS per runner (MB) when all have run, and its growth over ``--idle``
  seconds; runner CPU over that time, in % of one core per 1000 jobs;
* the DistKV server's CPU over the same time (% of one core, all
  servers), the broker's, all of theirs and the runners' (% of the
  machine: how close to its limit the group runs), and how late the runs
  of that time started against when they were due (median, 90th
  percentile; a job due then that had not started by its end counts as
  late as it had waited): whether the group keeps up;
* group messages per second on the group's channel, and the largest one
  (bytes);
* ``kill -9`` of the runner that ran the most jobs: how late each of its
  jobs ran again elsewhere, against when it was due (the end of its last
  run + 60 s): median and max;
* overlaps: runs of one job that overlapped in time, over all of the
  above (must be 0);
* SIGTERM of all five and a fresh start: seconds until every job has run
  again, and how late against when each was due.

Each run of the procedure appends ``JOB START END`` to a file of its
runner (no store writes: the bench measures the runners, not the
procedure), which is what "has run" and "overlap" are read from.

DistKV's built-in runner (five `bench/distkv_runner.py` processes) gets
the same jobs at ``--builtin`` jobs (it starts about one job per second,
so it cannot do thousands within the time limit), for the per-job
memory ratio: (RSS with the jobs - RSS with none) / jobs, each side
measured in this run.
"""

import argparse
import contextlib
import glob
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import anyio
from moat.util import P, yload

from distkv_ext.devtools.node import local_cluster
from distkv_ext.run import group_topic

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
GROUP = "scale"
RUNNERS = 5
#: Seconds between the runs of a job.
REPEAT = 60

#: The trivial procedure: note the run in this runner's log file.
TICK = """
import os, time
t0 = time.time()
with open(os.path.join(logdir, "runs-%d.log" % os.getpid()), "a") as f:
    f.write("%s %.6f %.6f\\n" % (name, t0, time.time()))
return 1
"""


def _rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_s(pid):
    """User + system CPU seconds of ``pid`` so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parse_runs(text, runs):
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            try:
                runs.setdefault(parts[0], []).append((float(parts[1]), float(parts[2])))
            except ValueError:
                pass


class _RunLogs:
    """The run logs of one directory, read incrementally: each `read`
    parses only the lines appended since the last one (the logs of a
    10,000-job run grow by megabytes, and the bench reads them every
    second, in the process that also hosts the broker)."""

    def __init__(self):
        self.pos = {}
        self.runs = {}

    def read(self, logdir):
        files = glob.glob(os.path.join(logdir, "runs-*.log"))
        if set(self.pos) - set(files) or any(os.path.getsize(fn) < self.pos.get(fn, 0) for fn in files):
            self.pos, self.runs = {}, {}  # the directory was made afresh
        for fn in files:
            with open(fn, "rb") as f:
                f.seek(self.pos.get(fn, 0))
                data = f.read()
            end = data.rfind(b"\n") + 1  # a line being written waits for the next read
            self.pos[fn] = self.pos.get(fn, 0) + end
            _parse_runs(data[:end].decode("ascii", errors="replace"), self.runs)
        return self.runs


_LOGS = {}


def read_runs(logdir, only=None):
    """{job: [(start, end), ...]} from every runner's log file (or ``only``).
    The result of a whole directory is shared with the next call (it adds
    to it): read it, do not change it."""
    if only is None:
        return _LOGS.setdefault(os.path.abspath(logdir), _RunLogs()).read(logdir)
    runs = {}
    with open(only, encoding="ascii", errors="replace") as f:
        _parse_runs(f.read(), runs)
    return runs


def lateness(runs, jobs, after, repeat, *, since=None):
    """For each of ``jobs`` that ran after ``after``: how late its first such
    run started, against when it was due (the end of the run before it +
    ``repeat``), or against ``since`` if it was due before that (a
    failover: how long after the kill); never negative."""
    res = []
    for j in jobs:
        first = next(((s, due) for s, due in _starts(runs.get(j, ()), repeat) if s >= after), None)
        if first is not None:
            s, due = first
            res.append(max(0.0, s - (due if since is None else max(due, since))))
    return res


def _starts(spans, repeat):
    """(start, when it was due) of each run of ``spans`` after the first:
    due ``repeat`` seconds after the run before it ended."""
    for (_, e_prev), (s, _) in itertools.pairwise(sorted(spans)):
        yield s, e_prev + repeat


def lateness_within(runs, after, before, repeat):
    """How late each run that started between ``after`` and ``before``
    started, against when it was due (as `lateness`), and for each job due
    in that time that had not started by ``before``, how long it had
    waited then (at least that late): the runners' backlog while nothing
    fails.  Sorted."""
    res = []
    for spans in runs.values():
        res.extend(max(0.0, s - d) for s, d in _starts(spans, repeat) if after <= s < before)
        begun = [sp for sp in spans if sp[0] < before]
        if begun:
            due = max(begun)[1] + repeat  # the latest run before ``before`` ended, + repeat
            if after <= due < before:
                res.append(before - due)
    return sorted(res)


def last_runner(runs_by_pid, pids):
    """{runner: [jobs whose latest run was on it]}."""
    last = {}
    for pid, runs in runs_by_pid.items():
        for j, spans in runs.items():
            t = max(s for s, _ in spans)
            if j not in last or t > last[j][0]:
                last[j] = (t, pid)
    names = {p: n for n, p in pids.items()}
    res = {}
    for j, (_, pid) in last.items():
        if pid in names:
            res.setdefault(names[pid], []).append(j)
    return res


def runs_by_pid(logdir):
    res = {}
    for fn in glob.glob(os.path.join(logdir, "runs-*.log")):
        pid = int(os.path.basename(fn)[5:-4])
        res[pid] = read_runs(logdir, fn)
    return res


def count_overlaps(runs):
    """How many runs started before the previous run of the same job ended."""
    n = 0
    for spans in runs.values():
        for (_, e1), (s2, _) in itertools.pairwise(sorted(spans)):
            if s2 < e1:
                n += 1
    return n


class Daemons:
    """Runner processes (ours: ``run all``; "distkv": DistKV's own)."""

    def __init__(self, kind, cl, workdir, n=RUNNERS):
        self.kind, self.cl, self.workdir = kind, cl, workdir
        self.procs = {}
        for i in range(n):
            self.start(f"{kind[0]}{i + 1}")

    def start(self, name):
        cfg = self.cl.servers[len(self.procs) % len(self.cl.servers)].config
        if self.kind == "ours":
            args = [os.path.join(BIN, "distkv"), "-c", cfg, "client", "run", "all", "-g", GROUP, "--name", name]
        else:
            args = [sys.executable, os.path.join(HERE, "distkv_runner.py"), cfg, GROUP, name]
        with open(os.path.join(self.workdir, f"{self.kind}-{name}.log"), "ab") as log:
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def term_all(self, timeout=60):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def live(self):
        return {n: p for n, p in self.procs.items() if p.poll() is None}


def write_jobs(d, n, logdir, repeat=REPEAT):
    """A deploy directory with ``n`` jobs (the procedure is stored already)."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "jobs.yaml"), "w", encoding="utf-8") as f:
        f.write(f"defaults: {{group: {GROUP}, code: sc.tick, target: now, repeat: {repeat}, delay: 5}}\njobs:\n")
        for i in range(n):
            f.write(f"- {{path: j{i}, data: {{name: j{i}, logdir: {logdir!r}}}}}\n")


async def _off_loop(fn, *args):
    """``fn(*args)`` in a worker thread: this process's event loop also
    runs the MQTT broker (`local_cluster`), which must not stop while we
    wait for a deploy or for runners to exit (a deploy of 10,000 jobs
    froze it for 14 s: the server lost its broker, the runners their
    heartbeats)."""
    return await anyio.to_thread.run_sync(fn, *args)


def deploy(cl, d):
    t0 = time.time()
    r = subprocess.run(
        [os.path.join(BIN, "distkv"), "-c", cl.client_config, "client", "code", "deploy", d, "--no-diff", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode:
        raise RuntimeError(f"deploy failed ({r.returncode}): {r.stderr[-2000:]} {r.stdout[-3000:]}")
    return t0, time.time()


async def wait_all_ran(logdir, names, since, limit, origin=None):
    """Seconds from ``origin`` (default: ``since``) until each of ``names``
    has a run starting after ``since``; None if not within ``limit`` (then:
    how many did)."""
    origin = since if origin is None else origin
    with anyio.move_on_after(limit):
        while True:
            done = await _off_loop(_ran_since, logdir, names, since)
            if len(done) == len(names):
                return max(0.0, max(done) - origin), len(done)
            await anyio.sleep(1)
    return None, len(await _off_loop(_ran_since, logdir, names, since))


def _ran_since(logdir, names, since):
    """For each of ``names`` that has a run starting after ``since``: when
    the first such run started (in a worker thread: see `_off_loop`)."""
    runs = read_runs(logdir)
    res = []
    for n in names:
        after = [s for s, _ in runs.get(n, ()) if s >= since]
        if after:
            res.append(min(after))
    return res


def _lateness_now(logdir, jobs, after, repeat):
    return lateness(read_runs(logdir), jobs, after, repeat)


async def count_messages(c, seconds):
    """(messages per second, largest message in bytes) on the group channel."""
    n, big = 0, 0
    with anyio.move_on_after(seconds):
        async with c.msg_monitor(group_topic("any", GROUP), raw=True) as mon:
            async for m in mon:
                n += 1
                raw = m.get("raw") if hasattr(m, "get") else None
                big = max(big, len(raw or b""))
    return n / seconds, big


async def one_size(c, cl, n, args, workdir):
    """The figures of one N for our runners, as a dict."""
    logdir = os.path.join(workdir, f"runs{n}")
    os.makedirs(logdir)
    jobdir = os.path.join(workdir, f"deploy{n}")
    write_jobs(jobdir, n, logdir)
    ds = Daemons("ours", cl, workdir)
    res = {"n": n}
    try:
        await anyio.sleep(6)  # the group forms
        t0, t1 = await _off_loop(deploy, cl, jobdir)
        res["deploy"] = t1 - t0
        names = [f"j{i}" for i in range(n)]
        res["all_ran"], res["ran"] = await wait_all_ran(logdir, names, t0, args.limit, origin=t1)
        pids = {k: p.pid for k, p in ds.live().items()}
        rss0 = {k: _rss_mb(p) for k, p in pids.items()}
        cpu0 = {k: _cpu_s(p) for k, p in pids.items()}
        servers = [sp.process.pid for sp in cl.servers if sp.running]
        scpu0 = sum(_cpu_s(p) for p in servers)
        bcpu0 = _cpu_s(cl.broker.pid)
        t_idle = time.time()
        res["msgs"], res["biggest"] = await count_messages(c, args.idle)
        dt = time.time() - t_idle
        res["server_cpu"] = (sum(_cpu_s(p) for p in servers) - scpu0) / dt * 100
        res["broker_cpu"] = (_cpu_s(cl.broker.pid) - bcpu0) / dt * 100
        late = await _off_loop(lambda: lateness_within(read_runs(logdir), t_idle, t_idle + dt, REPEAT))
        res["idle_late"] = (statistics.median(late), late[int(0.9 * (len(late) - 1))]) if late else (None, None)
        res["rss"] = rss0
        res["rss_growth"] = {k: _rss_mb(p) - rss0[k] for k, p in pids.items()}
        res["cpu_per_1000"] = statistics.mean((_cpu_s(p) - cpu0[k]) / dt * 100 / (n / 1000) for k, p in pids.items())
        await anyio.sleep(2)
        by_runner = last_runner((await _off_loop(runs_by_pid, logdir)), pids)
        victim, jobs = max(by_runner.items(), key=lambda kv: len(kv[1]))
        res["victim_jobs"] = len(jobs)
        t_kill = time.time()
        await _off_loop(ds.kill, victim)
        with anyio.move_on_after(args.limit):
            while True:
                late = await _off_loop(_lateness_now, logdir, jobs, t_kill, REPEAT)
                if len(late) == len(jobs):
                    break
                await anyio.sleep(1)
        res["failover"] = (statistics.median(late), max(late)) if late else (None, None)
        res["failover_done"] = len(late)
        late = await _off_loop(lambda: lateness(read_runs(logdir), jobs, t_kill, REPEAT, since=t_kill))
        res["failover_after_kill"] = (statistics.median(late), max(late)) if late else (None, None)
        await _off_loop(ds.term_all)
        ds = Daemons("ours", cl, workdir)
        t_restart = time.time()
        res["restart"], res["restarted"] = await wait_all_ran(logdir, names, t_restart, args.limit)
        late = await _off_loop(_lateness_now, logdir, names, t_restart, REPEAT)
        res["restart_late"] = (statistics.median(late), max(late)) if late else (None, None)
        res["overlaps"] = await _off_loop(lambda: count_overlaps(read_runs(logdir)))
    finally:
        await _off_loop(ds.stop)
        await _clear(c)
    return res


async def builtin_rss(c, cl, n, workdir, limit):
    """(RSS per job in MB, all ran within ``limit``?) of DistKV's runner."""
    empty = Daemons("distkv", cl, workdir, n=1)
    await anyio.sleep(10)
    base = _rss_mb(next(iter(empty.procs.values())).pid)
    empty.stop()
    logdir = os.path.join(workdir, f"builtin{n}")
    os.makedirs(logdir)
    await _put_jobs(c, n, logdir)
    ds = Daemons("distkv", cl, workdir)
    try:
        ran, count = await wait_all_ran(logdir, [f"j{i}" for i in range(n)], time.time() - 5, limit)
        rss = statistics.mean(_rss_mb(p.pid) for p in ds.live().values())
        return (rss - base) / n, ran, count, base
    finally:
        ds.stop()
        await _clear(c)


async def ours_base(cl, workdir):
    ds = Daemons("ours", cl, workdir, n=1)
    try:
        await anyio.sleep(8)
        return _rss_mb(next(iter(ds.procs.values())).pid)
    finally:
        ds.stop()


async def _put_jobs(c, n, logdir):
    """DistKV-layout entries (what its runner reads), written directly."""
    async with anyio.create_task_group() as tg:
        for i in range(n):
            value = {
                "code": P("sc.tick"),
                "data": {"name": f"j{i}", "logdir": logdir},
                "target": time.time(),
                "repeat": REPEAT,
                "delay": 5,
            }
            tg.start_soon(lambda i=i, value=value: c.set(P(":.distkv.run.any") + (GROUP, f"j{i}"), value=value))


async def _clear(c):
    for p in (
        P(":.distkv.run.any") + (GROUP,),
        P(":.distkv.state.any") + (GROUP,),
        P(":.distkv.state.state.any") + (GROUP,),
    ):
        try:
            await c.delete_tree(p)
        except Exception:
            pass


async def drill(workdir, n, *, repeat=REPEAT, limit=240):
    """The scale drill (tests/drills/test_scale_drill.py): one server, five
    runner daemons, ``n`` any-node jobs repeating every ``repeat`` seconds,
    deployed at once; then ``kill -9`` of the runner that ran the most.
    Returns {"never_ran": jobs that did not run within ``limit`` seconds
    of the deploy, "not_again": jobs of the killed runner that did not run
    again elsewhere within ``limit``, "overlaps": runs of one job that
    overlapped, "all_ran": seconds, "victim_jobs": how many it ran,
    "failover_max": seconds late, at worst}."""
    from distkv.client import open_client

    async with local_cluster(1, workdir=workdir, broker_process=True) as cl:
        with open(cl.client_config, encoding="utf-8") as f:
            cfg = yload(f, attr=True)
        async with open_client(**cfg) as c:
            from distkv_ext.code import CodeRoot

            cr = await CodeRoot.as_handler(c)
            await cr.add("sc.tick", code=TICK, variables=["name", "logdir"], is_async=None)
            logdir = os.path.join(workdir, "runs")
            os.makedirs(logdir)
            jobdir = os.path.join(workdir, "deploy")
            write_jobs(jobdir, n, logdir, repeat=repeat)
            names = [f"j{i}" for i in range(n)]
            ds = Daemons("ours", cl, workdir)
            res = {}
            try:
                await anyio.sleep(4)  # the group forms
                t0, t1 = await _off_loop(deploy, cl, jobdir)
                res["all_ran"], _ = await wait_all_ran(logdir, names, t0, limit, origin=t1)
                runs = await _off_loop(read_runs, logdir)
                res["never_ran"] = sorted(j for j in names if j not in runs)
                res["never_ran_states"] = await _states_of(c, res["never_ran"][:5])
                pids = {k: p.pid for k, p in ds.live().items()}
                victim, jobs = max(
                    last_runner((await _off_loop(runs_by_pid, logdir)), pids).items(), key=lambda kv: len(kv[1])
                )
                res["victim_jobs"] = len(jobs)
                t_kill = time.time()
                await _off_loop(ds.kill, victim)
                with anyio.move_on_after(limit):
                    while len(late := await _off_loop(_lateness_now, logdir, jobs, t_kill, repeat)) < len(jobs):
                        await anyio.sleep(1)
                again = await _off_loop(read_runs, logdir)
                res["not_again"] = sorted(j for j in jobs if not any(s >= t_kill for s, _ in again.get(j, ())))
                res["not_again_states"] = await _states_of(c, res["not_again"][:5])
                res["victim"] = victim
                res["failover_max"] = max(late) if late else None
                res["overlaps"] = await _off_loop(count_overlaps, again)
            finally:
                await _off_loop(ds.stop)
            return res


def drill_apart(workdir, n, repeat=REPEAT):
    """`drill` in a Python process of its own; returns its result.  The
    drill's event loop then shares nothing with a test session's heap
    (260 MB, 1,000 tests in).  That alone did not cure the drill's
    failures after a long session (the load did: see
    tests/drills/test_scale_drill.py).  The broker is a process of its
    own as well (`local_cluster`'s ``broker_process``)."""
    out = os.path.join(workdir, "drill-result.json")
    code = (
        "import json, sys, anyio\n"
        "from bench import scale\n"
        "res = anyio.run(lambda: scale.drill(sys.argv[1], int(sys.argv[2]), repeat=int(sys.argv[4])), backend='trio')\n"
        "with open(sys.argv[3], 'w', encoding='utf-8') as f:\n"
        "    json.dump(res, f, default=repr)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, workdir, str(n), out, str(repeat)],
        cwd=os.path.dirname(HERE),
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode:
        raise RuntimeError(f"the drill's process failed (exit {r.returncode}): {r.stderr[-3000:]}")
    with open(out, encoding="utf-8") as f:
        return json.load(f)


async def _states_of(client, jobs):
    """{job: its stored state} of a few ``jobs`` (what a drill that failed
    prints: why they did not run)."""
    from distkv_ext.run import job_states

    return {j: await job_states(client, "any", GROUP, P(j)) for j in jobs}


def _fmt(x, spec=".1f"):
    return "-" if x is None else format(x, spec)


def report(r, base, builtin):
    n = r["n"]
    print(f"\n== {n} jobs, {RUNNERS} runners")
    print(f"  deploy (one code deploy)           {r['deploy']:.1f} s")
    ran = _fmt(r["all_ran"]) + " s" if r["all_ran"] is not None else f"NOT within the limit ({r['ran']} of {n})"
    print(f"  all ran once after the deploy      {ran}")
    print("  RSS per runner (MB)                " + "  ".join(f"{k} {v:.1f}" for k, v in sorted(r["rss"].items())))
    print(
        "  RSS growth over the idle time (MB) " + "  ".join(f"{k} {v:+.1f}" for k, v in sorted(r["rss_growth"].items()))
    )
    per_job = (statistics.mean(r["rss"].values()) - base) / n * 1024
    line = f"  RSS per job (ours)                 {per_job:.1f} KB"
    if builtin:
        bper = builtin[0] * 1024
        line += f"   built-in {bper:.1f} KB ({(builtin[1] and 'all ran') or 'not all ran'}, {builtin[2]} jobs)   ratio {per_job / bper:.2f}"
    print(line)
    print(f"  runner CPU while idle              {r['cpu_per_1000']:.2f} % of a core per 1000 jobs")
    print(f"  server CPU while idle              {r['server_cpu']:.1f} % of a core (all servers)")
    print(f"  broker CPU while idle              {r['broker_cpu']:.1f} % of a core")
    busy = r["cpu_per_1000"] * n / 1000 * RUNNERS + r["server_cpu"] + r["broker_cpu"]
    cores = os.cpu_count() or 1
    print(f"  all of them while idle             {busy / cores:.0f} % of this machine ({cores} cores)")
    med, p90 = r["idle_late"]
    print(f"  runs while idle, late by           median {_fmt(med, '.2f')} s, 90th percentile {_fmt(p90, '.2f')} s")
    print(f"  group messages                     {r['msgs']:.1f} /s, largest {r['biggest']} bytes")
    med, mx = r["failover"]
    print(f"  kill -9 of the busiest runner ({r['victim_jobs']} jobs): each ran again elsewhere, late by")
    print(
        f"                                     median {_fmt(med, '.2f')} s, max {_fmt(mx, '.2f')} s ({r['failover_done']} ran again)"
    )
    med, mx = r["failover_after_kill"]
    print(f"  ... counted from the kill for jobs due before it: median {_fmt(med, '.2f')} s, max {_fmt(mx, '.2f')} s")
    rs = _fmt(r["restart"]) + " s" if r["restart"] is not None else f"NOT within the limit ({r['restarted']} of {n})"
    med, mx = r["restart_late"]
    print(
        f"  SIGTERM of all, fresh start        all ran again after {rs}; late by median {_fmt(med, '.2f')} s, max {_fmt(mx, '.2f')} s"
    )
    print(f"  overlapping runs                   {r['overlaps']}")


async def _main(args):
    from distkv.client import open_client

    with contextlib.ExitStack() as stack:
        if args.workdir:  # kept, for reading the runners' logs afterwards
            d = tempfile.mkdtemp(prefix="scale-", dir=args.workdir)
            print(f"work directory (kept): {d}")
        else:
            d = stack.enter_context(tempfile.TemporaryDirectory())
        extra = {"server": {"buffer": args.buffer}} if args.buffer else {}
        if args.timeout:  # the runners' group timing (runner.timeout, a quarter of it between heartbeats)
            extra["runner"] = {"timeout": args.timeout, "heartbeat": args.timeout / 4}
        async with local_cluster(args.servers, workdir=d, extra_config=extra, broker_process=True) as cl:
            with open(cl.client_config, encoding="utf-8") as f:
                cfg = yload(f, attr=True)
            async with open_client(**cfg) as c:
                from distkv_ext.code import CodeRoot

                cr = await CodeRoot.as_handler(c)
                await cr.add("sc.tick", code=TICK, variables=["name", "logdir"], is_async=None)
                base = await ours_base(cl, d)
                builtin = None
                if args.builtin:
                    builtin = await builtin_rss(c, cl, args.builtin, d, args.limit)
                    print(
                        f"built-in runner, {args.builtin} jobs: RSS {builtin[3]:.1f} MB empty, +{builtin[0] * 1024:.1f} KB per job"
                    )
                for n in args.sizes:
                    report(await one_size(c, cl, n, args, d), base, builtin)


def main(argv=()):
    ap = argparse.ArgumentParser(prog="bench scale")
    ap.add_argument("--sizes", default="1000,5000,10000", help="numbers of jobs, comma-separated")
    ap.add_argument("--servers", type=int, default=1, help="DistKV servers (1 or 3)")
    ap.add_argument("--idle", type=float, default=300, help="seconds of steady state measured per size")
    ap.add_argument("--limit", type=float, default=600, help="longest wait for any one step (seconds)")
    ap.add_argument("--builtin", type=int, default=200, help="jobs given to DistKV's runner (0: skip it)")
    ap.add_argument(
        "--buffer", type=int, default=0, help="DistKV's server.buffer (its flow-control window) for servers and clients"
    )
    ap.add_argument("--timeout", type=float, default=0, help="the runners' runner.timeout (default: theirs, 2 s)")
    ap.add_argument("--workdir", help="keep the work directory (the runners' logs) under this one")
    args = ap.parse_args(list(argv))
    args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    print(
        f"Scale benchmark: {args.servers} DistKV server(s), {RUNNERS} runner daemons, any-node jobs repeating every 60 s"
    )
    anyio.run(_main, args, backend="trio")


if __name__ == "__main__":
    main(sys.argv[1:])
