"""Scheduling decisions (`_decision`) and the runner kinds' policies
(`_policy`), without a server: the same verdicts for the scheduler (with
a view of the group) and ``run why`` (without)."""

import pytest

from distkv_ext.run import GroupHeard, RunnerEntry, StateEntry
from distkv_ext.run._decision import Decision, Kind, StaticView, decide, decide_running
from distkv_ext.run._explain import _Shim, explain_job
from distkv_ext.run._policy import ALL, ANY, POLICIES, SINGLE

NOW = 1000.0


def entry(**kw):
    e = _Shim(RunnerEntry, {"code": "p", **kw})
    e.job_name = "j"
    return e


def state(**kw):
    return _Shim(StateEntry, kw)


def view(policy=ANY, **kw):
    kw.setdefault("assignment", {"j": "me"})
    return StaticView(node="me", policy=policy, live=frozenset(kw.pop("live", ("me", "other"))), **kw)


# --- what run why says: no view ---


@pytest.mark.parametrize(
    ("value", "st", "verdict"),
    [
        ({"target": 1}, {"node": "r1", "started": NOW - 3}, "running on r1 since 3 s"),
        ({"target": 1}, {"started": 2, "stopped": 3}, "not scheduled: done"),
        ({"target": NOW - 1}, {}, "due now (target); a runner of the group starts it"),
        ({"target": 1, "repeat": 5}, {"started": NOW - 1, "stopped": NOW}, "starts in 5 s (repeat)"),
        ({}, None, "not scheduled: no target"),
        ({"target": 1}, {"node": "", "started": NOW}, "not scheduled: running on "),
        (None, {"node": "r2"}, "running on r2 since ?"),
    ],
)
def test_run_why_verdicts(value, st, verdict):
    res = explain_job(None if value is None else {"code": "p", **value}, st, NOW)
    assert res["verdict"] == verdict
    assert ("next_start" in res) == verdict.startswith("starts in")


ALIVE = GroupHeard(frozenset({"r1"}), True, False, 0.5, 2.0)
OTHERS = GroupHeard(frozenset({"r2"}), True, False, 2.0, 2.0)
NOBODY = GroupHeard(frozenset(), True, False, 2.0, 2.0)
DEAF = GroupHeard(frozenset(), True, True, 2.0, 2.0)  # a keyed group, and we lack the key
CUT_SHORT = GroupHeard(frozenset(), False, False, 1.0, 2.0)  # listened less than the timeout
GONE = "was running on r1 (started 40 s ago); that runner is gone (not heard in its group for 2 s)"


@pytest.mark.parametrize(
    ("heard", "kind", "node", "st", "verdict", "status"),
    [
        (ALIVE, "any", None, {"node": "r1", "started": NOW - 40}, "running on r1 since 40 s", "running"),
        (
            OTHERS,
            "any",
            None,
            {"node": "r1", "started": NOW - 40},
            f"{GONE}: a live runner of the group takes it over",
            "runner gone",
        ),
        (
            NOBODY,
            "any",
            None,
            {"node": "r1", "started": NOW - 40},
            f"{GONE}, and no runner of the group is running",
            "runner gone",
        ),
        (
            NOBODY,
            "all",
            "r1",
            {"node": "r1", "started": NOW - 40},
            f"{GONE}: the job runs again when it is back",
            "runner gone",
        ),
        (
            OTHERS,
            "single",
            "r1",
            {"node": "r1", "started": NOW - 40},
            f"{GONE}: the job runs again when it is back",
            "runner gone",
        ),
        (DEAF, "any", None, {"node": "r1", "started": NOW - 40}, "running on r1 since 40 s", "running"),
        (CUT_SHORT, "any", None, {"node": "r1", "started": NOW - 40}, "running on r1 since 40 s", "running"),
        (NOBODY, "any", None, {}, "due now (target); no runner of the group is running", "due"),
        (ALIVE, "any", None, {}, "due now (target); a runner of the group starts it", "due"),
        (
            ALIVE,
            "single",
            "r9",
            {},
            "due now (target); no runner for node r9 is running (not heard in its group for 2 s)",
            "due",
        ),
        (DEAF, "single", "r9", {}, "due now (target); a runner of the group starts it", "due"),
    ],
)
def test_run_why_minds_the_runners(heard, kind, node, st, verdict, status):
    """With what listening to the group found: a job whose runner is not
    heard is not "running"; nothing is claimed of a group not heard long
    enough, or not understood (no key)."""
    res = explain_job({"code": "p", "target": NOW - 5}, st, NOW, heard=heard, kind=kind, node=node)
    assert (res["verdict"], res["status"]) == (verdict, status)
    assert res["runner_gone"] is (status == "runner gone")


def test_no_view_decisions():
    assert decide(entry(target=NOW - 1), state(), NOW) == Decision(Kind.RUN_HERE, "target", at=NOW - 1)
    assert decide(entry(target=NOW + 5), state(), NOW) == Decision(Kind.WAITING, "target", at=NOW + 5)
    assert decide(entry(target=1), state(node="x", started=7), NOW) == Decision(
        Kind.HELD_BY, "running on x", node="x", at=7
    )
    assert decide(_Shim(RunnerEntry, None), state(), NOW) == Decision(Kind.NOT_SCHEDULED, "deleted")


# --- what the scheduler does: with a view ---


def test_blocked():
    e, s = entry(target=1), state()
    assert decide(e, s, NOW, view(stopping=True)) == Decision(Kind.BLOCKED, "runner stopping")
    assert decide(e, s, NOW, view(ready=False)) == Decision(Kind.BLOCKED, "waiting to hear the group")
    assert decide(e, s, NOW, view(connected=False)) == Decision(Kind.BLOCKED, "cut off from the group")


def test_assigned_elsewhere():
    d = decide(entry(target=1), state(), NOW, view(assignment={"j": "other"}))
    assert d == Decision(Kind.ASSIGNED_TO, "assigned to other", node="other")
    assert decide(entry(target=1), state(), NOW, view(assignment={})).reason == "assigned to None"


def test_run_here_restart_and_take_over():
    e = entry(target=1)
    assert decide(e, state(), NOW, view()) == Decision(Kind.RUN_HERE, "target", node="me", at=1)
    d = decide(e, state(node="me"), NOW, view())
    assert d == Decision(Kind.RUN_HERE, "restarting after this runner restarted", node="me", at=NOW)
    d = decide(e, state(node="gone"), NOW, view())
    assert d == Decision(Kind.RUN_HERE, "taking over from gone", node="me", at=NOW)
    assert decide(e, state(node="other", started=5), NOW, view()).kind is Kind.HELD_BY


@pytest.mark.parametrize("policy", [ALL, SINGLE])
def test_unshared_jobs_need_no_group(policy):
    e = entry(target=1)
    v = view(policy, ready=False, connected=False, assignment={})
    assert decide(e, state(), NOW, v).kind is Kind.RUN_HERE
    assert decide(e, state(node="gone"), NOW, v).kind is Kind.HELD_BY  # nobody takes over unshared jobs
    # held by our name: an earlier life of ours, or a namesake that is still
    # running (then we stop once we hear it): not before we have listened
    assert decide(e, state(node="me"), NOW, v) == Decision(
        Kind.BLOCKED, "waiting to hear the group (a runner called me may run it)"
    )
    v = view(policy, ready=True, connected=True, assignment={})
    assert decide(e, state(node="me"), NOW, v).reason == "restarting after this runner restarted"


def test_decide_running():
    assert decide_running("j", view(), rebalance=True).kind is Kind.RUN_HERE
    assert decide_running("j", view(connected=False), rebalance=True) == Decision(
        Kind.BLOCKED, "cut off from the group"
    )
    moved = decide_running("j", view(assignment={"j": "other"}), rebalance=True)
    assert moved == Decision(Kind.ASSIGNED_TO, "moved to other", node="other")
    assert decide_running("j", view(assignment={"j": "other"}), rebalance=False).kind is Kind.RUN_HERE
    assert decide_running("j", view(assignment={}), rebalance=True).kind is Kind.RUN_HERE  # not assigned yet
    assert decide_running("j", view(ALL, connected=False), rebalance=True).kind is Kind.RUN_HERE


# --- policies ---


def test_policies():
    assert POLICIES == {"any": ANY, "all": ALL, "single": SINGLE}
    assert (ANY.heartbeat_group, ANY.claims, ANY.shares_jobs, ANY.state_per_member) == (True, True, True, False)
    assert (ALL.heartbeat_group, ALL.claims, ALL.shares_jobs, ALL.state_per_member) == (True, False, False, True)
    assert (SINGLE.heartbeat_group, SINGLE.claims, SINGLE.shares_jobs) == (True, False, False)
    assert ALL.state_subpath(("all", "g"), "n1") == ("all", "g", "n1")
    assert ANY.state_subpath(("any", "g"), "n1") == ("any", "g")
    assert ANY.group_topic(("any", "g")) == ("distkv_code", "run", "any", "g")
    assert SINGLE.default_node("host", ("at", "pi", "g")) == "pi"
    assert SINGLE.default_node("host", ()) == "host"
    assert ANY.default_node("host", ("at", "pi", "g")) == "host"
