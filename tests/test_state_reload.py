"""A state write the server refuses for its chain reads the state again
(`StateEntry.save`, `ResyncRoot.reload_entry`), against an in-process
DistKV server.

Why: in the scale drill (3,000 jobs, five runners, kill -9 of one) a
runner tried to take over a job about 200 times a minute for minutes, and
the server refused every write with "Entry is new": the job's state was
gone from the store, the runner's mirror still had its chain, and nothing
ever corrected the mirror.  The job never ran again.  However the mirror
comes to miss a change, one refused write must be enough to heal it.

The tests make the mirror miss one message (the watch's deletion or
value of the state), which is that situation exactly.
"""

import time

import pytest
from distkv.exceptions import ServerError
from moat.util import NotGiven

from distkv_ext.codekit.store.entries import is_chain_error
from distkv_ext.run import AnyRunnerRoot, StateRoot
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job
from tests.test_state_writes import BASE, PATH, StatesRoot, _state, states  # noqa: F401 (a fixture)
from tests.test_unsaved import STATE, stored


def miss_one(monkeypatch, root_type, when):
    """The mirrors of ``root_type`` drop the first watch message for which
    ``when(value)`` is true (as if it never came); returns the paths dropped."""
    real = root_type._apply
    missed = []

    async def apply(self, path, value, chain):
        if not missed and when(value):
            missed.append(tuple(path))
            return
        await real(self, path, value, chain)

    monkeypatch.setattr(root_type, "_apply", apply)
    return missed


async def test_a_deletion_the_mirror_missed_is_read_after_the_refused_write(client, states, monkeypatch):  # noqa: F811
    st = await _state(client, states)
    missed = miss_one(monkeypatch, type(states), lambda v: v is NotGiven)
    await client.delete(PATH)
    await wait_for(lambda: missed, timeout=10, what="the deletion, dropped")
    assert st.node == "r5" and st.chain is not None  # the mirror believes in a state the store lacks
    st.node, st.runs = "r1", 2
    with pytest.raises(ServerError, match="Entry is new") as err:
        await st.save()
    assert is_chain_error(err.value)
    await wait_for(lambda: states.follow(("j",), create=False) is None, timeout=10, what="the store's truth: no state")
    fresh = states.follow(("j",), create=None)  # what the runner asks for next (`state_for`)
    fresh.node, fresh.runs = "r1", 1
    await fresh.save()
    assert (await stored(client))["node"] == "r1"


async def test_a_value_the_mirror_missed_is_read_after_the_refused_write(client, states, monkeypatch):  # noqa: F811
    st = await _state(client, states)
    missed = miss_one(monkeypatch, type(states), lambda v: isinstance(v, dict) and v.get("node") == "r2")
    await client.set(PATH, value={"node": "r2", "last_node": "r2", "runs": 2, "reason": "taken over"})
    await wait_for(lambda: missed, timeout=10, what="the take-over, dropped")
    st.node = None
    with pytest.raises(ServerError, match="Chain is"):
        await st.save()
    await wait_for(lambda: st.node == "r2", timeout=10, what="their value, read again")
    assert (st.node, st.runs, st.reason) == ("r2", 2, "taken over")  # theirs, in the mirror too
    assert (await stored(client))["node"] == "r2"
    st.runs = 3
    await st.save()  # the chain is the store's again
    assert (await stored(client))["runs"] == 3


async def test_no_reload_when_the_write_failed_otherwise(client, states, monkeypatch):  # noqa: F811
    st = await _state(client, states)
    reloads = []
    monkeypatch.setattr(type(states), "reload_entry", lambda self, e: reloads.append(e))
    with pytest.raises(TimeoutError):
        await st.save(limit=0)  # not confirmed in time: nothing says the mirror is wrong
    assert reloads == []


async def test_a_runner_whose_mirror_missed_a_deletion_runs_the_job_again(autojump_clock, client, cr, monkeypatch):
    await cr.add("forty.two", code="return 42")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "foo.test", "forty.two")
    await wait_for(lambda: job.state.result == 42, what="the first run")
    missed = miss_one(monkeypatch, StateRoot, lambda v: v is NotGiven)
    await client.delete(STATE)  # behind the runner's back (an operator, another runner)
    await wait_for(lambda: missed, what="the deletion, dropped")
    assert job.state.runs == 1
    await job.run_at(time.time())
    await wait_for(lambda: _ran_again(client), what="the run after the refused claim")


async def _ran_again(client):
    value = await stored(client, STATE)
    return value is not None and value.get("result") == 42 and value.get("node") is None


async def test_a_write_refused_after_the_mirror_closed_is_still_the_refusal(client):
    """A runner's last writes may come after its mirror closed: nothing is
    read again then, and the caller hears of the refusal, not of that."""
    async with client.mirror(BASE, root_type=StatesRoot, need_wait=True) as root:
        st = await _state(client, root)
    await client.delete(PATH)  # the closed mirror does not hear of it
    st.node = "r1"
    with pytest.raises(ServerError, match="Entry is new"):
        await st.save()
