"""Why a job runs or not, in words and as a status word: `explain_job`.

Judged from the stored entry and state alone (`decide` without a group
view), and, where the caller listened to the job's group
(`hear_groups`), from which of its runners are alive: the store keeps
"running on r1" after r1 died; the group channel knows better.  So
does a job that requires tags (`_placement`): the live members' tags are
heard with their heartbeats; without them, the runners' word in the
state (``placement``) is what is known.
"""

import time
from typing import Any

from moat.util import NotGiven

from distkv_ext.codekit.core.errors import InputRefused

from ._calendar import Calendar
from ._calplan import upcoming
from ._decision import Decision, Kind, decide
from ._entry import RunnerEntry, StateEntry
from ._liveness import GroupHeard
from ._placement import ANYWHERE, lacking, lacks_text, nobody_has, placement_of
from ._schedule import plan_start

__all__ = ["explain_job", "placement_problem", "status_word", "verdict", "STATUS_WORDS"]


class _Shim:
    """Stand-in for a mirror entry, so that `decide` can judge a stored
    value without a running handler: the fields of ``cls`` (its ATTRS)
    from ``value``, else the class's defaults."""

    #: the job's name in its group (a calendar job's jitter depends on it)
    job_name = ""

    def __init__(self, cls: type[RunnerEntry] | type[StateEntry], value: Any) -> None:
        self.value = value if value is not None else NotGiven
        for k in cls.ATTRS:
            setattr(self, k, value.get(k, getattr(cls, k)) if isinstance(value, dict) else getattr(cls, k))

    def __getattr__(self, name: str) -> Any:
        # only for the type checker: the fields are set above, per class
        raise AttributeError(name)


def explain_job(
    value: Any,
    state: Any,
    now: float | None = None,
    *,
    heard: GroupHeard | None = None,
    kind: str = "any",
    node: Any = None,
    paused: str | None = None,
    job: str = "",
) -> dict[str, Any]:
    """Why the job runs or not, as a dict (see ``distkv client run why``):
    the state's facts (running_on, last_node, started, stopped, runs,
    errors_in_a_row, last_error, result, runner_says), the ``verdict`` in
    words and, if it starts later, ``next_start``.  ``value``: the runner
    entry's stored value (None: deleted); ``state``: its state's (or None).

    ``heard``: what listening to the job's group found (`hear_groups`);
    with it, a job whose runner is gone is no longer "running" (status
    ``runner gone``), and a due job nobody can start says so.  ``kind``
    and ``node`` (single-node jobs: their NODE; all-node jobs: the member
    whose state this is) say whose runners those are.  A job held back by
    its tags says so (``placement``, `placement_problem`) instead of
    waiting or being due.
    ``paused``: the job's pause in words (`job_pause`), or None: a paused
    job is "not scheduled: paused by ..." (status ``paused``), and
    ``paused`` in the result says so (also while a run goes on).

    A calendar job (``job``: its name in its group, for its jitter) also
    has ``calendar`` (its cron or sun time and zone), ``next_start`` (also
    while it runs), ``skipped`` (starts skipped so far) and ``skip_note``
    (why the last one was)."""
    now = time.time() if now is None else now
    entry = _Shim(RunnerEntry, value)
    entry.job_name = job
    st = _Shim(StateEntry, state or {})
    try:
        d = decide(entry, st, now, paused=paused)
    except (TypeError, ValueError) as exc:  # written behind our back: runners report it too
        d = Decision(Kind.NOT_SCHEDULED, f"{UNUSABLE}: {exc}")
    res: dict[str, Any] = {
        "running_on": st.node,
        "last_node": st.last_node,
        "started": st.started or None,
        "stopped": st.stopped or None,
        "runs": st.runs,
        "errors_in_a_row": st.backoff,
        "last_error": st.error,
        "result": None if st.result is NotGiven else st.result,
        "runner_says": st.reason or None,
        "paused": paused,
    }
    res["verdict"] = verdict(d, now)
    if d.kind is Kind.HELD_BY and isinstance(st.waiting, str) and st.waiting:
        if st.waiting.startswith("waiting for limit "):  # claimed, its code not started (`_limiter`)
            res["verdict"] = f"claimed by {d.node} {_ago(now, d.at)} ago, {st.waiting}"
        else:
            res["verdict"] += f", {st.waiting}"
    res["status"] = status_word(d, st)
    res["runner_gone"] = False
    if heard is not None:
        _mind_the_runners(res, d, heard, kind, node, now)
    res["placement"] = placement_problem(value, state, heard=heard, kind=kind, node=node, now=now)
    if (
        res["placement"]
        and d.kind is not Kind.NOT_SCHEDULED
        and not (d.kind is Kind.HELD_BY and not res["runner_gone"])
    ):
        res["verdict"] = _held_back(res, d, res["placement"], kind, now)
        res["status"] = "waiting"
    if d.kind is Kind.WAITING:
        res["next_start"] = d.at
    _calendar_facts(res, entry, st, now)
    return res


def placement_problem(
    value: Any,
    state: Any,
    *,
    heard: GroupHeard | None = None,
    kind: str = "any",
    node: Any = None,
    now: float | None = None,
) -> str | None:
    """Why the job's tags keep it from running (``no live member has tag
    relay``; all-node and single-node jobs: ``r2 lacks tag relay``), or
    None.  From the live members' tags where ``heard`` (`hear_groups`)
    heard the group long enough; else from what the runners wrote in the
    state (``placement``).  ``value``, ``state``: the stored entry and
    state; ``node``: a single-node job's NODE, an all-node state's member.
    ``heard`` must have listened until a member with the tags was heard
    or for the whole timeout (`hear_groups` with ``tags``)."""
    try:
        placement = placement_of(value)
    except InputRefused:  # not usable at all: `entry_problem` says why
        placement = ANYWHERE
    if not placement.require:
        return None
    try:
        d = decide(_Shim(RunnerEntry, value), _Shim(StateEntry, state or {}), time.time() if now is None else now)
    except (TypeError, ValueError, AttributeError):  # fields of the wrong type: not our word to give
        return None
    if d.kind is Kind.NOT_SCHEDULED:  # done, no target, gave up: tags or not
        return None
    if heard is not None and heard.complete and not heard.deaf:
        if kind == "any" or node is None:
            return nobody_has(placement, heard.tags)
        have = heard.tags.get(str(node))
        if have is not None:  # else not live: what it said last
            missing = lacking(placement, have)
            return lacks_text(str(node), missing) if missing else None
    said = state.get("placement") if isinstance(state, dict) and not state.get("node") else None
    return said if isinstance(said, str) and said else None


def _held_back(res: dict[str, Any], d: Decision, problem: str, kind: str, now: float) -> str:
    """The verdict on a job its tags keep from running (`placement_problem`)."""
    if kind != "any":  # its member (or NODE) lacks the tags
        return f"{problem}: it does not run the job"
    if res["runner_gone"]:
        return f"was running on {d.node} (started {_ago(now, d.at)} ago); that runner is gone and {problem}"
    return problem


def _calendar_facts(res: dict[str, Any], entry: Any, st: Any, now: float) -> None:
    """The calendar of a calendar job, its next start, its skipped starts."""
    try:
        cal = Calendar.of(entry) if isinstance(entry.value, dict) else None
    except (TypeError, ValueError):
        return
    if cal is None:
        return
    res["calendar"] = f"{cal.what} ({cal.tz})"
    res["skipped"] = st.skipped if isinstance(st.skipped, int) else 0
    res["skip_note"] = st.skip_note or None
    if "next_start" not in res and st.node is not None:
        times = upcoming(cal, plan_start(entry, st, now), entry, st, now, 1)
        if times:
            res["next_start"] = times[0]
    if res.get("next_start") is not None:
        res["next_start_text"] = cal.text(res["next_start"])


def _mind_the_runners(res: dict[str, Any], d: Decision, heard: GroupHeard, kind: str, node: Any, now: float) -> None:
    """Correct ``res`` (of `explain_job`) by what was heard of the group."""
    silent = f"not heard in its group for {heard.timeout:g} s"
    if d.kind is Kind.HELD_BY and d.node and heard.gone(d.node):
        res["runner_gone"] = True
        res["status"] = "runner gone"
        then = f"was running on {d.node} (started {_ago(now, d.at)} ago); that runner is gone ({silent})"
        if kind != "any":
            res["verdict"] = f"{then}: the job runs again when it is back"
        elif heard.nobody:
            res["verdict"] = f"{then}, and no runner of the group is running"
        else:
            res["verdict"] = f"{then}: a live runner of the group takes it over"
    elif d.kind is Kind.RUN_HERE:
        if kind == "single" and node is not None and heard.gone(node):
            res["verdict"] = f"due now ({d.reason}); no runner for node {node} is running ({silent})"
        elif heard.nobody:
            res["verdict"] = f"due now ({d.reason}); no runner of the group is running"


#: How the reason of a job whose stored fields make no schedule begins.
UNUSABLE = "unusable runner entry"

#: The words `status_word` gives a job, for tables and the metrics.
STATUS_WORDS = (
    "running",
    "broken",
    "due",
    "waiting",
    "stopping",
    "failed",
    "gave up",
    "quarantined",
    "paused",
    "done",
    "idle",
    "deleted",
    "runner gone",
)


def status_word(d: Decision, state: Any) -> str:
    """One word for a job's state (`STATUS_WORDS`), from its `decide`
    verdict and its state: running (a node holds it), due (it should run
    now and nobody does), waiting (it starts later), failed (its last run
    failed; it is retried), gave up (``max_tries`` errors in a row), done
    (it ran and will not again), idle (no target), paused (``run pause``), deleted, broken (its
    stored fields make no schedule).  (The last
    word, "runner gone", is `explain_job`'s, from what it heard.)"""
    if d.kind is Kind.HELD_BY:
        waiting = getattr(state, "waiting", None)
        if isinstance(waiting, str) and waiting:
            return "stopping" if waiting.startswith("stopping") else "waiting"
        return "running"
    if d.kind is Kind.NOT_SCHEDULED:
        if d.reason.startswith(UNUSABLE):
            return "broken"
        if d.reason.startswith("gave up"):
            return "gave up"
        if d.reason.startswith("quarantined"):
            return "quarantined"
        if d.reason.startswith("paused"):
            return "paused"
        if d.reason == "deleted":
            return "deleted"
        if getattr(state, "error", None):
            return "failed"
        return "done" if getattr(state, "runs", 0) else "idle"
    if getattr(state, "error", None) and getattr(state, "backoff", 0):
        return "failed"
    return "due" if d.kind is Kind.RUN_HERE else "waiting"


def verdict(d: Decision, now: float) -> str:
    """A `decide` verdict made without a group view, in words (``run why``)."""
    if d.kind is Kind.HELD_BY and d.node:
        return f"running on {d.node} since {_ago(now, d.at)}"
    if d.kind is Kind.RUN_HERE:
        return f"due now ({d.reason}); a runner of the group starts it"
    if d.kind is Kind.WAITING and d.at is not None:
        return f"starts in {d.at - now:.0f} s ({d.reason})"
    if d.kind is Kind.NOT_SCHEDULED and d.reason.startswith(("quarantined", "paused")):
        return d.reason
    # NOT_SCHEDULED; a state naming no usable node ("running on " + "")
    return f"not scheduled: {d.reason}"


def _ago(now: float, t: float | None) -> str:
    """How long ago ``t`` was, by our clock: ``t`` is the clock of the
    node that wrote it, which may be ahead of ours (then: 0 s, never a
    negative age; display only, nothing decides on it)."""
    if not t:
        return "?"
    return f"{max(0.0, now - t):.0f} s"
