"""Placement by tags, without a server: which members may take a job
(`_placement`), the assignment within them (`_assign`), the verdicts of
`decide` and of ``run why`` (`explain_job`), the checks of ``runner.tags``
and of a stored entry's tags."""

import pytest

from distkv_ext.codekit.core.errors import BadArguments, InputRefused
from distkv_ext.run import GroupHeard, RunnerEntry, StateEntry
from distkv_ext.run._assign import assign
from distkv_ext.run._config import RunnerConfig
from distkv_ext.run._decision import Kind, StaticView, decide
from distkv_ext.run._explain import _Shim, explain_job, placement_problem
from distkv_ext.run._layout import entry_problem, job_value
from distkv_ext.run._placement import (
    Placement,
    allowed_nodes,
    candidates,
    lacking,
    nobody_has,
    placement_of,
)
from distkv_ext.run._policy import ALL, ANY, SINGLE

NOW = 1000.0
NODES = {"r1": 1.0, "r2": 1.0, "r3": 1.0}
TAGS = {"r1": {"relay", "room=kitchen"}, "r2": {"relay"}, "r3": set()}

# --- who may take a job ---


def test_placement_of_a_stored_value():
    assert not placement_of({"code": "p"}) and not placement_of(None) and not placement_of([1])
    assert placement_of({"require_tags": ["relay"], "prefer_tags": "room=kitchen"}) == Placement(
        ("relay",), ("room=kitchen",)
    )
    with pytest.raises(InputRefused):
        placement_of({"require_tags": [1]})


def test_required_tags_restrict_and_preferred_ones_narrow_while_they_can():
    relay = Placement(("relay",))
    assert candidates(relay, NODES, TAGS) == {"r1": 1.0, "r2": 1.0}
    assert candidates(Placement(("relay", "room=kitchen")), NODES, TAGS) == {"r1": 1.0}
    assert candidates(Placement(("gpu",)), NODES, TAGS) == {}
    kitchen = Placement(("relay",), ("room=kitchen",))
    assert candidates(kitchen, NODES, TAGS) == {"r1": 1.0}
    # the preferred member is gone (or takes no jobs): the other eligible ones
    assert candidates(kitchen, {"r2": 1.0, "r3": 1.0}, TAGS) == {"r2": 1.0}
    assert candidates(kitchen, {**NODES, "r1": 0.0}, TAGS) == {"r1": 0.0, "r2": 1.0}
    # a preference alone never excludes
    assert candidates(Placement((), ("gpu",)), NODES, TAGS) == NODES
    assert lacking(Placement(("relay", "gpu")), {"relay"}) == ("gpu",)


def test_allowed_nodes_only_for_jobs_with_tags_and_nowhere_for_bad_tags():
    jobs = [("a", {"code": "p"}), ("b", {"require_tags": ["relay"]}), ("c", {"require_tags": [5]}), ("d", None)]
    assert allowed_nodes(jobs, NODES, TAGS) == {"b": ("r1", "r2"), "c": ()}


def test_the_words_for_a_job_nobody_may_run():
    assert nobody_has(Placement(("relay",)), {"r3": set()}) == "no live member has tag relay"
    assert nobody_has(Placement(("relay", "gpu")), {"r2": {"relay"}}) == "no live member has tag gpu"
    assert nobody_has(Placement(("gpu", "tpu")), {}) == "no live member has tags gpu, tpu"
    split = {"r2": {"relay"}, "r4": {"gpu"}}
    assert nobody_has(Placement(("relay", "gpu")), split) == "no live member has all of the tags relay, gpu"
    assert nobody_has(Placement(("relay",)), TAGS) is None
    assert nobody_has(Placement((), ("relay",)), {}) is None  # a preference never blocks


# --- the assignment within the eligible members ---


def test_assignment_spreads_restricted_jobs_over_their_members_only():
    jobs = [f"j{i}" for i in range(12)]
    allowed = {j: ("r1", "r2") for j in jobs[:6]}
    res = assign(jobs, NODES, {}, allowed)
    assert all(res[j] in ("r1", "r2") for j in jobs[:6])
    counts = {n: sum(1 for j in jobs if res[j] == n) for n in NODES}
    assert counts == {"r1": 4, "r2": 4, "r3": 4}  # balance holds: the others fill r3


def test_restricted_jobs_beyond_capacity_go_to_the_least_loaded_of_their_members():
    jobs = [f"j{i}" for i in range(9)]
    res = assign(jobs, NODES, {}, {j: ("r1", "r2") for j in jobs})
    counts = {n: sum(1 for j in jobs if res[j] == n) for n in NODES}
    assert counts["r3"] == 0 and abs(counts["r1"] - counts["r2"]) <= 1
    assert assign(["x"], NODES, {}, {"x": ()}) == {"x": None}
    assert assign(["x"], NODES, {}, {"x": ("r3",)}) == {"x": "r3"}


def test_a_job_stays_only_where_it_may_run():
    assert assign(["x"], NODES, {"x": "r3"}, {"x": ("r1", "r2")})["x"] in ("r1", "r2")
    assert assign(["x"], NODES, {"x": "r2"}, {"x": ("r1", "r2")})["x"] == "r2"


def test_without_restrictions_the_assignment_is_unchanged():
    jobs = [f"j{i}" for i in range(50)]
    cur = {f"j{i}": "r1" for i in range(20)}
    assert assign(jobs, NODES, cur, {}) == assign(jobs, NODES, cur)
    assert assign(jobs, NODES, cur, {"other": ("r1",)}) == assign(jobs, NODES, cur)


def test_a_preferred_member_that_comes_back_is_assigned_the_job_again():
    live = {"r2": 1.0, "r3": 1.0}
    pref = Placement((), ("relay", "room=kitchen"))
    res = assign(["x"], live, {}, {"x": tuple(candidates(pref, live, TAGS))})
    on = res["x"]
    back = assign(["x"], NODES, {"x": on}, {"x": tuple(candidates(pref, NODES, TAGS))})
    assert back == {"x": "r1"}  # the scheduler moves it only with runner.rebalance (decide_running)


# --- decide: the scheduler's verdict ---


def entry(**kw):
    e = _Shim(RunnerEntry, {"code": "p", "target": 1, **kw})
    e.job_name = "j"
    return e


def state(**kw):
    return _Shim(StateEntry, kw)


def test_all_and_single_node_runners_without_the_tags_do_not_run_the_job():
    for policy in (ALL, SINGLE):
        v = StaticView(node="me", policy=policy, tags={"me": {"gpu"}})
        d = decide(entry(require_tags=["relay"]), state(), NOW, v)
        assert (d.kind, d.reason) == (Kind.NOT_HERE, "me lacks tag relay")
        assert decide(entry(require_tags=["gpu"]), state(), NOW, v).kind is Kind.RUN_HERE
        assert decide(entry(prefer_tags=["relay"]), state(), NOW, v).kind is Kind.RUN_HERE
        # an earlier life of this runner held it: it does not restart it either
        d = decide(entry(require_tags=["relay"]), state(node="me"), NOW, v)
        assert d.kind is Kind.NOT_HERE


def test_a_job_that_would_not_start_anyway_is_no_placement_problem():
    done = state(started=2, stopped=3, for_target=1)
    v = StaticView(node="me", policy=ALL, tags={"me": set()})
    assert decide(entry(require_tags=["relay"]), done, NOW, v).kind is Kind.NOT_SCHEDULED
    v = StaticView(node="me", policy=ANY, assignment={"j": None})
    assert decide(entry(require_tags=["relay"]), done, NOW, v).kind is Kind.ASSIGNED_TO
    assert placement_problem(RELAY, {"started": 2, "stopped": 3, "for_target": RELAY["target"]}, heard=HEARD) is None
    assert placement_problem({**RELAY, "target": 0}, {}, heard=HEARD) is None  # no target


def test_any_node_jobs_nobody_may_run_say_so():
    v = StaticView(node="me", policy=ANY, live=frozenset({"r2"}), assignment={"j": None}, tags={"r2": {"gpu"}})
    d = decide(entry(require_tags=["relay"]), state(), NOW, v)
    assert (d.kind, d.reason) == (Kind.NOT_HERE, "no live member has tag relay")
    d = decide(entry(require_tags=["relay"]), state(node="gone"), NOW, v)
    assert d.kind is Kind.NOT_HERE  # its runner died: nobody takes it over
    v = StaticView(node="me", policy=ANY, live=frozenset({"r2"}), assignment={"j": "r2"}, tags={"r2": {"relay"}})
    assert decide(entry(require_tags=["relay"]), state(), NOW, v).kind is Kind.ASSIGNED_TO
    v = StaticView(node="me", policy=ANY, assignment={"j": "me"}, tags={"me": {"relay"}})
    assert decide(entry(require_tags=["relay"]), state(), NOW, v).kind is Kind.RUN_HERE


# --- run why, run list ---

HEARD = GroupHeard(frozenset({"r2", "r3"}), True, False, 2.0, 2.0, {"r2": frozenset({"gpu"}), "r3": frozenset()})
RELAY = {"code": "p", "target": NOW - 5, "require_tags": ["relay"]}


def test_run_why_names_the_missing_tag_instead_of_waiting():
    res = explain_job(RELAY, None, NOW, heard=HEARD)
    assert res["verdict"] == "no live member has tag relay" and res["placement"] == res["verdict"]
    res = explain_job(RELAY, {"node": "r1", "started": NOW - 40}, NOW, heard=HEARD)
    assert res["verdict"].endswith("that runner is gone and no live member has tag relay")
    with_relay = GroupHeard(frozenset({"r1"}), True, False, 0.5, 2.0, {"r1": frozenset({"relay"})})
    assert explain_job(RELAY, None, NOW, heard=with_relay)["verdict"].startswith("due now")
    assert explain_job(RELAY, {"node": "r1", "started": NOW - 4}, NOW, heard=with_relay)["verdict"].startswith(
        "running on r1"
    )


def test_run_why_for_a_member_without_the_tags():
    res = explain_job(RELAY, {}, NOW, heard=HEARD, kind="all", node="r2")
    assert res["verdict"] == "r2 lacks tag relay: it does not run the job"
    # not listened (or the member is not live): what the runner wrote
    said = {"placement": "r2 lacks tag relay", "reason": "r2 lacks tag relay"}
    assert explain_job(RELAY, said, NOW, kind="all", node="r2")["verdict"].startswith("r2 lacks tag relay")
    gone = GroupHeard(frozenset(), True, False, 2.0, 2.0)  # the member is not live: what it said last
    assert placement_problem(RELAY, said, heard=gone, kind="all", node="r2") == "r2 lacks tag relay"
    has_it = GroupHeard(frozenset({"r2"}), True, False, 0.5, 2.0, {"r2": frozenset({"relay"})})
    assert placement_problem(RELAY, said, heard=has_it, kind="all", node="r2") is None  # it has it now
    # a runner's word about tags the job no longer requires is not repeated
    assert placement_problem({"code": "p"}, said, kind="all", node="r2") is None


def test_deaf_or_short_listening_falls_back_to_the_state():
    deaf = GroupHeard(frozenset(), True, True, 2.0, 2.0)
    assert placement_problem(RELAY, {}, heard=deaf) is None
    assert placement_problem(RELAY, {"placement": "no live member has tag relay"}, heard=deaf) == (
        "no live member has tag relay"
    )


# --- the checks ---


@pytest.mark.parametrize(
    "bad",
    [
        {"require_tags": 5},
        {"require_tags": {"relay": 1}},
        {"require_tags": ["a b"]},
        {"require_tags": ["x" * 65]},
        {"prefer_tags": [None]},
        {"require_tags": [f"t{i}" for i in range(65)]},
    ],
)
def test_a_stored_entry_with_bad_tags_is_unusable_with_a_clear_problem(bad):
    problem = entry_problem({"code": ["p"], "target": 1, **bad})
    assert problem is not None and "tag" in problem and "\n" not in problem
    with pytest.raises(InputRefused):
        job_value({"code": "p", **bad})


def test_runner_tags_are_checked_once_and_the_option_adds_to_them():
    c = RunnerConfig.load({"tags": ["relay", "room=kitchen"]})
    assert c.tags == ("relay", "room=kitchen")
    assert c.with_tags(("relay", "gpu")).tags == ("relay", "room=kitchen", "gpu")
    assert RunnerConfig().tags == () and RunnerConfig.load({"tags": "relay"}).tags == ("relay",)
    for bad, msg in ((5, "runner.tags is int"), (["a b"], "runner.tags: 'a b' is no tag"), (["t"] * 65, "at most 64")):
        with pytest.raises(BadArguments, match=msg):
            RunnerConfig.load({"tags": bad})
    with pytest.raises(BadArguments, match="is no tag"):
        c.with_tags(["bad tag"])
