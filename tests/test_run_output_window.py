"""Quiet runs store no output; a job's state lists the runs whose output
may be stored (``outputs``), and a run's end deletes those that fall out
of the last ``output_runs`` (`distkv_ext.run._runoutput`)."""

import pytest
from distkv.exceptions import ServerError
from moat.util import P

from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._runoutput import LISTED_RUNS, window
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

STATE = P(":.distkv.state.any.g")
OUTPUT = P(":.distkv.output.any.g")


# --- window: pure ---


def test_window_lists_the_new_run_and_drops_what_falls_out():
    assert window([3, 4, 6], 7, 3) == ([6, 7], [3, 4])
    assert window([], 1, 5) == ([1], [])
    assert window([1, 2], 3, 5) == ([1, 2, 3], [])


def test_window_of_an_unknown_history_takes_every_run_that_may_have_stored():
    # an older runner kept the last `keep` runs and deleted the one falling out
    assert window(None, 10, 3) == ([8, 9, 10], [7])
    assert window(None, 2, 3) == ([1, 2], [])
    assert window("garbage", 6, 2) == ([5, 6], [4])


def test_window_ignores_numbers_that_are_not_earlier_runs():
    # written behind our back: later numbers, bools, negatives, strings
    listed, drop = window([9, 12, True, -1, 0, "3", 2.5, 4], 9, 3)
    assert listed == [9] and drop == [4]


def test_window_lists_nothing_beyond_its_size():
    keep = LISTED_RUNS + 1
    assert window([1, 2, 3], keep + 5, keep) == (None, [5])
    assert window([1], 3, keep) == (None, [])


def test_window_never_keeps_more_than_keep():
    for prior in (None, list(range(1, 40))):
        for n in range(1, 40):
            listed, drop = window(prior, n, 4)
            assert listed[-1] == n and len(listed) <= 4 and all(n - 4 < r <= n for r in listed)
            assert not set(listed) & set(drop)


# --- runners against a real DistKV ---


async def _output_of(client, job, run=None):
    """{run: its stored output} of ``job`` (or run ``run``'s, None: none)."""
    res = {}
    try:
        async for r in client.get_tree(OUTPUT + P(job)):
            if "value" in r:
                res[int(r.path[-1])] = r.value
    except ServerError as exc:  # nothing was ever stored below it
        assert "KeyError" in repr(exc)
    return res if run is None else res.get(run)


async def test_quiet_runs_store_no_output(autojump_clock, client, cr):
    await cr.add("silent", code="return 1")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, output_runs=3))
    job = await add_job(r, "q", "silent", repeat=1)
    await wait_for(lambda: (job.state.runs or 0) >= 5 and job.state.node is None, what="five quiet runs")
    assert await _output_of(client, "q") == {}
    assert list(job.state.outputs) == []
    await r.stop()


async def test_only_runs_that_printed_keep_output_and_only_the_last_ones(autojump_clock, client, cr):
    await cr.add("odd", code="n = _entry.state.runs\nif n % 2:\n    print('run', n)\nreturn n")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, output_runs=3))
    job = await add_job(r, "o", "odd", repeat=1)
    await wait_for(lambda: (job.state.runs or 0) >= 8 and job.state.node is None, what="eight runs")
    await r.stop()
    n = job.state.runs
    expected = [k for k in (n - 2, n - 1, n) if k % 2]
    outs = await _output_of(client, "o")
    assert sorted(outs) == expected
    assert all([t for _, _, t in outs[k]["lines"]] == [f"run {k}"] for k in expected)
    assert list(job.state.outputs) == expected


@pytest.mark.parametrize("listed", ["absent", "garbage"])
async def test_output_of_an_older_runner_is_deleted_in_time(autojump_clock, client, cr, listed):
    """A state that does not list its runs' output (an older runner wrote
    it, or someone wrote nonsense) counts every run of the last
    ``output_runs`` as stored: they go as they fall out, and nothing is
    kept for ever."""
    await cr.add("silent", code="return 1")
    state = {"runs": 4, "node": None, "last_node": "old"}
    if listed == "garbage":
        state["outputs"] = ["x", -1]
    await client.set(STATE + P("l"), value=state)
    for k in (3, 4):  # what the older runner kept with output_runs: 2
        await client.set(OUTPUT + P("l") + (str(k),), value={"node": "old", "run": k, "lines": [], "dropped": 0})
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, output_runs=2))
    job = await add_job(r, "l", "silent", repeat=1)
    await wait_for(lambda: (job.state.runs or 0) >= 7 and job.state.node is None, what="three runs of ours")
    await r.stop()
    assert await _output_of(client, "l") == {}
    assert list(job.state.outputs) == []


async def test_a_run_stopped_while_it_runs_keeps_what_it_printed(autojump_clock, client, cr):
    """Output written while the run went on is listed, even when the run is
    stopped (cancelled) before its code ends."""
    code = "import anyio\nprint('started')\nawait anyio.sleep(10000)"
    await cr.add("long", code=code, is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=dict(FAST, output_runs=3))
    job = await add_job(r, "s", "long")
    await wait_for(lambda: _output_of(client, "s", 1), what="run 1's output")
    await r.stop()
    assert list(job.state.outputs) == [1]
    assert [t for _, _, t in (await _output_of(client, "s", 1))["lines"]] == ["started"]
