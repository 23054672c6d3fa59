"""No runner trusts another machine's clock (issue 15, "Time").

Fixed numbers, no server: `next_start` / `decide` for runners whose
clocks are ten minutes ahead of or behind the machine that wrote a time,
the ``written`` stamp of runner entries (`stamp_target`), a name clash
decided by age, and ``run why`` with a clock behind the runners'.  The
same with real daemons under faketime: tests/drills/test_clock_drill.py.
"""

import time

import pytest
from moat.util import P

from distkv_ext.run import (
    OUTPUT_PREFIX,
    RUN_PREFIX,
    STATE_PREFIX,
    AnyRunnerRoot,
    RunnerEntry,
    StateEntry,
    explain_job,
    stamp_target,
)
from distkv_ext.run._decision import Decision, Kind, StaticView, decide
from distkv_ext.run._explain import _Shim
from distkv_ext.run._namesake import TIE, NameClash, Namesakes
from distkv_ext.run._ops import job_output, list_jobs, store_job
from distkv_ext.run._policy import ANY
from distkv_ext.web._model import StatusModel
from distkv_ext.web._views import _last_line
from tests.helpers import wait_for

T = 1_800_000_000.0  # the operator's (right) clock when it set the job
SKEW = 600.0  # ten minutes


def entry(**kw):
    e = _Shim(RunnerEntry, {"code": "p", **kw})
    e.job_name = "j"
    return e


def state(heard_at=None, **kw):
    s = _Shim(StateEntry, kw)
    if heard_at is not None:
        s.heard_at = heard_at  # what a StateEntry of a running scheduler knows
    return s


VIEW = StaticView(node="me", policy=ANY, assignment={"j": "me"}, live=frozenset({"me", "other"}))


def test_a_runner_behind_starts_a_now_target_at_once_and_only_once():
    e = entry(target=T, written=T)  # `run set --at now`: target = written
    behind = T - SKEW
    assert decide(e, state(), behind, VIEW) == Decision(Kind.RUN_HERE, "target", node="me", at=behind)
    # it ran, on its own clock (started before the target by that clock)
    ran = state(for_target=T, started=behind, stopped=behind + 1, last_node="me", runs=1)
    assert decide(e, ran, behind + 2, VIEW) == Decision(Kind.NOT_SCHEDULED, "done")
    # and a right or ahead runner reading that state does not run it again either
    assert (
        decide(
            e,
            ran,
            T + SKEW,
            VIEW,
        ).kind
        is Kind.NOT_SCHEDULED
    )


def test_a_calendar_target_waits_for_this_clock():
    e = entry(target=T + 60, written=T)  # "in a minute", by the writer's clock
    assert decide(e, state(), T, VIEW) == Decision(Kind.WAITING, "target", at=T + 60)
    assert decide(e, state(), T - SKEW, VIEW).kind is Kind.WAITING
    # an entry without the stamp (DistKV's runner, an older client): calendar time too
    assert decide(entry(target=T), state(), T - SKEW, VIEW) == Decision(Kind.WAITING, "target", at=T)


def test_a_runner_ahead_sees_a_new_near_future_target():
    ahead = T + SKEW
    # an earlier run, by the runner ahead: started "after" the new target
    ran = state(for_target=T - 3600, started=ahead - 30, stopped=ahead - 29, last_node="me", runs=1)
    e = entry(target=T + 60, written=T)
    d = decide(e, ran, ahead, VIEW)
    assert (d.kind, d.reason) == (Kind.RUN_HERE, "target")
    # the same target, consumed: not again
    assert decide(
        e, state(for_target=T + 60, started=ahead, stopped=ahead + 1, last_node="me"), ahead + 2, VIEW
    ).kind is (Kind.NOT_SCHEDULED)


def test_a_state_of_an_older_runner_falls_back_to_started():
    e = entry(target=T, written=T)
    assert decide(e, state(started=T + 1, stopped=T + 2), T + 3, VIEW).kind is Kind.NOT_SCHEDULED
    assert decide(e, state(started=T - 1, stopped=T), T + 3, VIEW).reason == "target"


@pytest.mark.parametrize("other_clock", [-SKEW, 0.0, SKEW], ids=["behind", "right", "ahead"])
def test_after_a_failover_the_repeat_counts_from_when_this_node_heard_the_stop(other_clock):
    now = T
    e = entry(target=T - 100, written=T - 100, repeat=5)
    st = state(
        for_target=T - 100,
        started=now - 3 + other_clock,
        stopped=now - 2 + other_clock,
        last_node="other",
        heard_at=now - 2,
    )
    assert decide(e, st, now, VIEW) == Decision(Kind.WAITING, "repeat", at=now + 3)
    assert decide(e, st, now + 3, VIEW).kind is Kind.RUN_HERE
    # retry after an error and resume likewise
    failed = state(for_target=T - 100, stopped=now + other_clock, last_node="other", backoff=1, heard_at=now)
    assert decide(entry(target=T - 100, delay=10), failed, now, VIEW) == Decision(
        Kind.WAITING, "retry after error 1", at=now + 10
    )
    moved = state(for_target=T - 100, stopped=now + other_clock, last_node="other", resume=True, heard_at=now)
    assert decide(e, moved, now, VIEW).kind is Kind.RUN_HERE


def test_the_node_that_stopped_it_counts_on_its_own_clock():
    e = entry(target=T - 100, repeat=5)
    st = state(for_target=T - 100, started=T - 3, stopped=T - 2, last_node="me", heard_at=T - 0.5)
    assert decide(e, st, T, VIEW) == Decision(Kind.WAITING, "repeat", at=T + 3)


def test_run_why_estimates_with_its_own_clock_and_never_shows_a_negative_age():
    res = explain_job({"code": "p", "target": T}, {"node": "r1", "started": T + SKEW}, T)
    assert res["verdict"] == "running on r1 since 0 s"
    res = explain_job(
        {"code": "p", "target": T, "repeat": 5}, {"for_target": T, "stopped": T - 2, "last_node": "r1"}, T
    )
    assert res["verdict"] == "starts in 3 s (repeat)"


# --- the written stamp ---


def test_stamp_target():
    v = {"code": "p", "target": T}
    assert stamp_target(v, None, T)["written"] == T
    assert stamp_target(v, {"code": "p", "target": T, "written": T - 9}, T + 5)["written"] == T - 9  # unchanged
    assert stamp_target(v, {"code": "p", "target": T - 1, "written": T - 9}, T + 5)["written"] == T + 5  # new target
    assert "written" not in stamp_target({"code": "p", "target": 0, "written": 3}, None, T)
    assert "written" not in stamp_target(v, {"code": "p", "target": T}, T)  # stored without one: none
    assert "written" not in v


def test_a_bad_written_stamp_is_ignored():
    e = entry(target=T, written="yesterday")
    assert decide(e, state(), T - SKEW, VIEW) == Decision(Kind.WAITING, "target", at=T)


# --- name clash: by age ---


class _Group:
    """What `Namesakes.clash` reads of its group."""

    topic = ("distkv_code", "run", "any", "g")
    name = "same"

    def __init__(self, since, born, instance):
        self.since, self.born, self.instance = since, born, instance
        self.lost = None

    def on_lost(self, exc):
        self.lost = exc


def _clash(me, other):
    """Does ``me`` (since, born, instance) stop on hearing ``other``?"""
    g = _Group(*me)
    Namesakes(g, None).clash(other[0], other[2], other[1])
    return isinstance(g.lost, NameClash)


def test_the_younger_runner_stops_even_when_its_clock_is_earlier():
    # old: started at monotonic 100, its clock right; young: started 50 s
    # later (monotonic 150 on the same scale), its clock ten minutes behind
    old = (T, 100.0, "a" * 12)
    young = (T + 50 - SKEW, 150.0, "b" * 12)
    assert _clash(young, old)
    assert not _clash(old, young)


def test_a_tie_of_ages_or_an_old_heartbeat_falls_back_to_since_then_run_id():
    a, b = (T, 100.0, "a" * 12), (T + 1, 100.0 + TIE / 2, "b" * 12)
    assert _clash(b, a) and not _clash(a, b)  # exactly one stops
    g = _Group(T + 1, 100.0, "b" * 12)
    Namesakes(g, None).clash(T, "a" * 12, None)  # no age: an older runner's heartbeat
    assert isinstance(g.lost, NameClash)


# --- against a real (in-process) server ---

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.2, "rebalance_delay": 0.5}


async def test_store_job_stamps_a_new_target_with_the_writers_clock(client, cr):
    await cr.add("clk.p", code="return 1")

    def with_target(t):
        return lambda old: {**(old or {}), "code": P("clk.p"), "target": t}

    before = time.time()
    _, v = await store_job(client, "any", "cg", "j", with_target(before))
    assert before <= v["written"] <= time.time()
    action, again = await store_job(client, "any", "cg", "j", with_target(before))
    assert (action, again["written"]) == ("unchanged", v["written"])
    _, later = await store_job(client, "any", "cg", "j", with_target(before + 3600))
    assert later["written"] >= v["written"] and later["target"] == before + 3600
    _, repeat = await store_job(client, "any", "cg", "j", lambda old: {**old, "repeat": 5})
    assert repeat["written"] == later["written"]  # the target did not change


@pytest.mark.parametrize("other_clock", [-SKEW, SKEW], ids=["behind", "ahead"])
async def test_a_repeat_after_another_nodes_run_counts_from_when_this_runner_heard_it(
    other_clock, client, cr, monkeypatch
):
    """A state written by a node whose clock is ten minutes off: the job
    repeats ``repeat`` seconds after this runner heard of its end, not at
    once (stopped in the past) nor ten minutes later (in the future); and
    while it waits, its state is written once (the due time, ``computed``),
    not at every look (a due time that moved by microseconds was)."""
    saves = []
    save = StateEntry.save

    async def counted(self, wait=False, **kw):
        saves.append((self.reason, self.node))
        return await save(self, wait, **kw)

    monkeypatch.setattr(StateEntry, "save", counted)
    await cr.add("clk.p", code="import time\nreturn time.time()")  # when its code started
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    target = time.time() - 100
    t0 = time.time()
    other = t0 + other_clock
    await client.set(
        STATE_PREFIX + ("any", "g", "j"),
        value={"started": other - 1, "stopped": other, "last_node": "other", "runs": 1, "for_target": target},
    )
    await client.set(RUN_PREFIX + ("any", "g", "j"), value={"code": P("clk.p"), "target": target, "repeat": 2})
    st = r.state_for(("j",))
    await wait_for(lambda: (st.runs or 0) >= 2 and st.node is None, timeout=15, what="the repeat")
    # never early: counted from when n1 heard the stop (its claim, and
    # so ``started``, comes a little ahead of that: `claim_lead`)
    assert st.last_node == "n1" and st.result >= t0 + 2
    waiting = saves[: next(i for i, (_, node) in enumerate(saves) if node == "n1")]  # until run 2's claim
    assert waiting.count(("repeat", None)) <= 2, saves[:10]  # its due time, written once (or twice), not at every look


# --- what the status commands show of runs by nodes with different clocks ---


async def test_the_status_page_counts_a_start_and_a_failure_by_a_node_whose_clock_is_behind():
    m = StatusModel()
    m.loaded = True
    p = ("any", "g", "j")
    m.on_state(p, {"node": "ahead", "started": T + SKEW, "runs": 1, "last_node": "ahead"})
    m.on_state(p, {"node": None, "started": T + SKEW, "stopped": T + SKEW + 1, "runs": 1, "reason": "failed"})
    m.on_state(p, {"node": "behind", "started": T - SKEW, "stopped": T + SKEW + 1, "runs": 2, "last_node": "behind"})
    m.on_state(p, {"node": None, "started": T - SKEW, "stopped": T - SKEW + 1, "runs": 2, "reason": "failed"})
    assert (m.starts[("any", "g")], m.failures[("any", "g")]) == (2, 2)


async def test_the_latest_run_is_the_highest_run_number_whatever_the_clocks(client):
    await client.set(RUN_PREFIX + ("any", "og", "j"), value={"code": P("clk.p"), "target": T})
    for run, node, started in ((1, "ahead", T + SKEW), (2, "behind", T - SKEW + 5)):
        out = {"node": node, "run": run, "started": started, "lines": [[started, "stdout", f"run {run}"]]}
        await client.set(OUTPUT_PREFIX + ("any", "og", "j", str(run)), value=out)
    assert [o["run"] for o in await job_output(client, "any", "og", "j")] == [1, 2]
    jobs = [j async for j in list_jobs(client, "og", output_prefix=OUTPUT_PREFIX)]
    assert [j["last_output"] for j in jobs] == ["run 2"]
    outputs = {
        (None, 1): {"started": T + SKEW, "lines": [[0, "stdout", "run 1"]]},
        (None, 2): {"started": T - SKEW, "lines": [[0, "stdout", "run 2"]]},
    }
    assert _last_line(outputs, None) == "run 2"
