"""Pause, resume and trigger of jobs (`distkv_ext.run`), with in-process runners.

A pause is stored apart from the job (`PAUSE_PREFIX`): the runner entry
stays as it was, runners start no new run while it holds; a trigger is
one run now that leaves the schedule as it was.
"""

import time

import anyio
import pytest
from moat.util import P

from distkv_ext.codekit.core.errors import InputRefused, NotFound
from distkv_ext.run import (
    PAUSE_PREFIX,
    AllRunnerRoot,
    AnyRunnerRoot,
    JobRunning,
    RunnerEntry,
    StateEntry,
    explain_job,
    get_job,
    job_pause,
    pause_group,
    pause_job,
    pause_of,
    pause_reason,
    remove_job,
    trigger_job,
    unpause_group,
    unpause_job,
)
from distkv_ext.run._decision import Kind, StaticView, decide
from distkv_ext.run._explain import _Shim
from distkv_ext.run._policy import ANY
from distkv_ext.run._schedule import next_start
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

COUNT = "return 1"
SLEEPY = "import anyio\nawait anyio.sleep(30)\nreturn 'slept'"


def paused_note(job):
    """The runner noted in the job's state that it is paused."""
    return (job.state.reason or "").startswith("paused") and job.state.node is None


async def test_pause_stops_new_starts_and_resume_goes_on(autojump_clock, client, cr):
    await cr.add("count", code=COUNT)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "rep", "count", repeat=1)
    await wait_for(lambda: (job.state.runs or 0) >= 2, what="two runs")
    stored, _ = await get_job(client, "any", "g", "rep")

    assert await pause_job(client, "any", "g", "rep", by="op@box", reason="new pump") is True
    assert await pause_job(client, "any", "g", "rep") is False  # paused already: kept as it was
    await wait_for(lambda: paused_note(job), what="the runner notes the pause")
    assert job.state.reason.startswith("paused by op@box at ")
    assert job.state.reason.endswith(" (new pump); `run resume` to go on")
    runs = job.state.runs
    await anyio.sleep(10)  # ten repeats' worth
    assert job.state.runs == runs
    assert (await get_job(client, "any", "g", "rep"))[0] == stored  # the job's entry is untouched
    why = await job_pause(client, "any", "g", "rep")
    verdict = explain_job(stored, job.state.get_value(), paused=why)
    assert (verdict["status"], verdict["verdict"], verdict["paused"]) == ("paused", why, why)

    assert await unpause_job(client, "any", "g", "rep") == {"unpaused": True, "group_paused": None}
    await wait_for(lambda: job.state.runs >= runs + 2, what="runs after resume")
    assert await unpause_job(client, "any", "g", "rep") == {"unpaused": False, "group_paused": None}
    with pytest.raises(NotFound, match=r"no job stored at no\.such"):
        await pause_job(client, "any", "g", "no.such")


async def test_a_run_in_progress_goes_on_to_its_end(autojump_clock, client, cr):
    await cr.add("sleepy", code=SLEEPY, is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "s", "sleepy", repeat=1)
    await wait_for(lambda: job.state.node == "n1", what="the run")
    await pause_job(client, "any", "g", "s")
    await wait_for(lambda: job.state.result == "slept", timeout=60, what="the run's end")
    await wait_for(lambda: paused_note(job), what="the pause noted")
    await anyio.sleep(5)  # repeat 1: five runs would have started
    assert job.state.runs == 1


async def test_group_pause(autojump_clock, client, cr):
    await cr.add("count", code=COUNT)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    a = await add_job(r, "a", "count", repeat=1)
    b = await add_job(r, "sub.b", "count", repeat=1)
    await wait_for(lambda: (a.state.runs or 0) >= 1 and (b.state.runs or 0) >= 1, what="first runs")

    assert await pause_group(client, "any", "g", by="op@box") is True
    await wait_for(lambda: paused_note(a) and paused_note(b), what="both paused")
    assert a.state.reason.startswith("paused with its group by op@box")
    ra, rb = a.state.runs, b.state.runs
    await pause_job(client, "any", "g", "a")  # paused on its own too
    c = await add_job(r, "c", "count", repeat=1)  # a job added later is paused too
    await anyio.sleep(5)
    assert (a.state.runs, b.state.runs, c.state.runs) == (ra, rb, 0)

    res = await unpause_job(client, "any", "g", "sub.b")  # the group's pause holds it
    assert res["unpaused"] is False and res["group_paused"].startswith("paused with its group by op@box")
    assert await unpause_group(client, "any", "g") is True
    await wait_for(lambda: b.state.runs >= rb + 2 and c.state.runs >= 1, what="b and c go on")
    assert a.state.runs == ra  # paused on its own: stays so
    assert await unpause_group(client, "any", "g") is False

    with pytest.raises(NotFound, match=r"^no jobs in any-node group nosuch$"):
        await pause_group(client, "any", "nosuch")
    with pytest.raises(NotFound, match=r"^no jobs in single-node group g of n9$"):
        await pause_group(client, "single", "g", node="n9")


async def test_trigger_runs_once_without_touching_the_schedule(autojump_clock, client, cr):
    await cr.add("count", code=COUNT)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "rare", "count", repeat=100000)
    await wait_for(lambda: job.state.runs == 1 and job.state.node is None, what="the first run")
    stored, _ = await get_job(client, "any", "g", "rare")
    for_target = job.state.for_target

    assert await trigger_job(client, "any", "g", "rare", by="op@box") == [""]
    await wait_for(lambda: job.state.runs == 2 and job.state.node is None, what="the triggered run")
    assert job.state.triggered is None and not job.state.resume
    assert job.state.for_target == for_target
    assert (await get_job(client, "any", "g", "rare"))[0] == stored
    await anyio.sleep(30)
    assert job.state.runs == 2  # once: the repeat is 100000 s away again

    # a job that never ran, its target far ahead: runs now, and its target still counts
    ahead = time.time() + 3600
    later = r.follow(P("later"), create=True)
    later.code, later.target, later.written = P("count"), ahead, time.time()
    await later.save()
    await anyio.sleep(1)
    assert later.state.runs == 0
    await trigger_job(client, "any", "g", "later")
    await wait_for(lambda: later.state.runs == 1 and later.state.node is None, what="the triggered run")
    assert later.state.for_target is None
    why = explain_job(later.value, later.state.get_value())
    assert why["status"] == "waiting" and why["next_start"] == pytest.approx(ahead)

    # a job without a target ("never") runs once too
    idle = await add_job(r, "idle", "count")
    await wait_for(lambda: idle.state.runs == 1, what="its run")
    await idle.run_at(0)
    await trigger_job(client, "any", "g", "idle")
    await wait_for(lambda: idle.state.runs == 2 and idle.state.node is None, what="the triggered run")
    assert idle.value["target"] == 0


async def test_trigger_refusals(autojump_clock, client, cr):
    await cr.add("sleepy", code=SLEEPY, is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "s", "sleepy")
    await wait_for(lambda: job.state.node == "n1", what="the run")
    before = job.state.get_value()
    with pytest.raises(JobRunning, match=r"^job s is running \(on n1\): not triggered$"):
        await trigger_job(client, "any", "g", "s")
    assert job.state.get_value() == before
    with pytest.raises(NotFound, match=r"^no job stored at no\.such$"):
        await trigger_job(client, "any", "g", "no.such")
    with pytest.raises(NotFound, match=r"no member of all-node group g is known"):
        await client.set(P(":.distkv.run.all.g.nobody"), value={"code": P("sleepy"), "target": 0})
        await trigger_job(client, "all", "g", "nobody")


async def test_trigger_of_a_paused_job_runs_it_once(autojump_clock, client, cr):
    await cr.add("count", code=COUNT)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "rep", "count", repeat=1)
    await wait_for(lambda: (job.state.runs or 0) >= 1, what="a run")
    await pause_job(client, "any", "g", "rep")
    await wait_for(lambda: paused_note(job), what="paused")
    runs = job.state.runs
    await trigger_job(client, "any", "g", "rep")
    await wait_for(lambda: job.state.runs == runs + 1, what="the triggered run")
    await wait_for(lambda: paused_note(job), what="paused again")
    await anyio.sleep(10)
    assert job.state.runs == runs + 1


async def test_trigger_all_node_job_that_never_ran(autojump_clock, client, cr):
    await cr.add("count", code=COUNT)
    r = await AllRunnerRoot.as_handler(client, subpath=("all", "g"), code=cr, node="n1", cfg=FAST)
    await r.wait_ready()
    job = r.follow(P("idle"), create=True)
    job.code = P("count")
    await job.save()
    await anyio.sleep(2)
    assert job.state.runs == 0
    assert await trigger_job(client, "all", "g", "idle") == ["n1"]  # the member from its runner record
    await wait_for(lambda: job.state.runs == 1 and job.state.node is None, what="the run on n1")


@pytest.mark.parametrize(
    "garbage",
    [[1, 2], 42, "x" * 5000, {"by": 5, "at": "yesterday", "reason": ["a"]}, {"at": -1e300}, {"at": 1e300}],
)
async def test_garbage_in_the_pause_subtree(autojump_clock, client, cr, garbage):
    await cr.add("count", code=COUNT)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    held = await add_job(r, "held", "count", repeat=1)
    free = await add_job(r, "free", "count", repeat=1)
    await wait_for(lambda: (held.state.runs or 0) >= 1 and (free.state.runs or 0) >= 1, what="first runs")
    value = garbage
    await client.set(PAUSE_PREFIX + ("any", "g", "held"), value=value)
    await client.set(PAUSE_PREFIX + ("any", "g", "free", "deeper", "still"), value=value)  # below a job: not its pause
    await client.set(PAUSE_PREFIX + ("any", "other"), value=value)  # another group's
    await wait_for(lambda: paused_note(held), what="held is paused")
    assert held.state.reason.startswith("paused by ?") and held.state.reason.endswith("; `run resume` to go on")
    runs = free.state.runs
    await wait_for(lambda: free.state.runs >= runs + 2, what="free goes on")
    assert not r.lost_event.is_set() and r.ready
    assert (await job_pause(client, "any", "g", "held")).startswith("paused by ?")
    assert await unpause_job(client, "any", "g", "held") == {"unpaused": True, "group_paused": None}
    runs = held.state.runs
    await wait_for(lambda: held.state.runs >= runs + 1, what="held goes on")


async def test_pause_reason_is_one_line(client, cr):
    await cr.add("count", code=COUNT)
    await client.set(P(":.distkv.run.any.g.j"), value={"code": P("count"), "target": 0})
    with pytest.raises(InputRefused, match=r"^reason must be one line of text$"):
        await pause_job(client, "any", "g", "j", reason="a\nb")
    assert await job_pause(client, "any", "g", "j") is None


# --- the verdicts, without a server ---

NOW = 1_800_000_000.0
HOLD = "paused by op@box; `run resume` to go on"


def _entry(**kw):
    e = _Shim(RunnerEntry, {"code": "p", **kw})
    e.job_name = "j"
    return e


def _state(**kw):
    return _Shim(StateEntry, kw)


def test_decide_a_paused_job():
    view = StaticView(node="me", policy=ANY, assignment={"j": "me"})
    due = _entry(target=NOW - 5, written=NOW)
    assert decide(due, _state(), NOW, view, paused=HOLD) == decide(due, _state(), NOW, paused=HOLD)
    assert decide(due, _state(), NOW, paused=HOLD).kind is Kind.NOT_SCHEDULED
    assert decide(due, _state(), NOW, paused=HOLD).reason == HOLD
    assert decide(due, _state(), NOW).kind is Kind.RUN_HERE
    # a run goes on; an interrupted run resumes; a trigger starts once
    assert decide(due, _state(node="other"), NOW, paused=HOLD).kind is Kind.HELD_BY
    assert decide(due, _state(resume=True, stopped=NOW - 1), NOW, paused=HOLD).kind is Kind.RUN_HERE
    triggered = _state(resume=True, triggered="by op@box at T", for_target=NOW - 5)
    d = decide(_entry(target=NOW + 3600), triggered, NOW, paused=HOLD)
    assert (d.kind, d.reason, d.at) == (Kind.RUN_HERE, "triggered by op@box at T", NOW)


@pytest.mark.parametrize(
    "value, st, expect",
    [
        ({"target": 0}, {"resume": True, "triggered": "by x"}, NOW),  # no target: runs once all the same
        ({"target": NOW + 99}, {"resume": True, "triggered": "by x"}, NOW),  # a target ahead stays ahead
        ({"target": NOW + 99}, {"resume": False, "triggered": "by x"}, NOW + 99),  # no resume: no trigger
        ({"target": NOW + 99}, {"resume": True, "triggered": 5}, NOW + 99),  # not text: a resume, not a trigger
        ({"target": 0}, {"resume": True, "triggered": "by x", "quarantined": "stalled"}, None),
        ({"target": 0}, {"resume": True, "triggered": "by x", "node": "n2"}, None),
    ],
)
def test_next_start_of_a_trigger(value, st, expect):
    t, _ = next_start(_entry(**value), _state(**st), NOW)
    assert t == expect


@pytest.mark.parametrize(
    "value, words",
    [
        ({"by": "op@box", "reason": "new pump"}, "paused by op@box (new pump); `run resume` to go on"),
        ({"by": "a\nb", "reason": " x \t y "}, "paused by a b (x y); `run resume` to go on"),
        ({"by": "x" * 500}, f"paused by {'x' * 199}…; `run resume` to go on"),
        ({"at": "noon", "reason": 7}, "paused by ?; `run resume` to go on"),
        ({"at": float("nan")}, "paused by ?; `run resume` to go on"),
        ({"at": 10**30}, "paused by ?; `run resume` to go on"),
        ([1, 2], "paused by ?; `run resume` to go on"),
        ("text", "paused by ?; `run resume` to go on"),
        (0, "paused by ?; `run resume` to go on"),
    ],
)
def test_pause_words_of_anything(value, words):
    assert pause_reason(value) == words


def test_which_pause_holds_a_job():
    pauses = {(): {"by": "g"}, ("a",): {"by": "a"}, ("a", "b", "c"): {"by": "c"}, ("x",): None}
    assert pause_of(pauses, ("a", "b", "c")) == "paused by c; `run resume` to go on"
    assert pause_of(pauses, ("a", "b")) == "paused by a; `run resume` to go on"  # a pause above it
    assert pause_of(pauses, ("x",)) == "paused with its group by g; `run resume` to go on"  # None: no pause
    assert pause_of({("x",): None}, ("x",)) is None


async def test_deleting_a_job_drops_its_pause(client, cr):
    await cr.add("count", code=COUNT)
    await client.set(P(":.distkv.run.any.g.j"), value={"code": P("count"), "target": 0})
    await pause_job(client, "any", "g", "j")
    await remove_job(client, "any", "g", "j")
    await client.set(P(":.distkv.run.any.g.j"), value={"code": P("count"), "target": 0})
    assert await job_pause(client, "any", "g", "j") is None
    await remove_job(client, "any", "g", "j")  # no pause to drop: fine too
