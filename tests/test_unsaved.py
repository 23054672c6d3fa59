"""State writes that fail (`StateEntry.unsaved`, `_unsaved.Unsaved`),
against an in-process DistKV server.

A write "fails" here as it does under load: the server does not confirm
it in time.  The wrapper below raises TimeoutError instead of sending the
write (so it is certainly not applied), for the writes it is told to.

Why it matters: a run's end (or a release) that was not written left the
runner's mirror saying "free" while the store said "held by this live
runner": the runner never wrote it again and the others waited for it, so
the job never ran again (seen at 10,000 jobs, one job in a few runs).
"""

import pytest
from distkv.obj import ClientEntry

from distkv_ext.run import STATE_PREFIX, AnyRunnerRoot, StateEntry
from distkv_ext.run._unsaved import Unsaved
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job
from tests.test_state_writes import PATH, _state, states  # noqa: F401 (a fixture)


def failing(monkeypatch, when, times=1):
    """The next ``times`` writes of a state for which ``when(value)`` is
    true raise TimeoutError, unsent; returns the values refused."""
    real = ClientEntry.update
    refused = []

    async def update(self, value, **kw):
        if isinstance(self, StateEntry) and len(refused) < times and when(value):
            refused.append(dict(value))
            raise TimeoutError  # not confirmed in time (here: never sent)
        return await real(self, value, **kw)

    monkeypatch.setattr(ClientEntry, "update", update)
    return refused


async def stored(client, path=PATH):
    res = await client.get(path)
    return res.get("value")


async def test_a_failed_write_is_unsaved_and_written_again(client, states, monkeypatch):  # noqa: F811
    st = await _state(client, states)
    refused = failing(monkeypatch, lambda v: v.get("reason") == "finished")
    st.node, st.reason = None, "finished"
    with pytest.raises(TimeoutError):
        await st.save()
    assert refused and st.unsaved
    assert st.node is None  # the mirror reads what was set ...
    assert (await stored(client))["node"] == "r5"  # ... the store does not have it
    again = Unsaved("r5", 0.1, lambda path: False)
    again.add(st)
    await again.retry()
    assert not st.unsaved and len(again) == 0
    assert ((await stored(client))["node"], (await stored(client))["reason"]) == (None, "finished")


async def test_a_write_that_keeps_failing_stays_to_be_written(client, states, monkeypatch):  # noqa: F811
    st = await _state(client, states)
    failing(monkeypatch, lambda v: v.get("node") is None, times=3)
    st.node = None
    with pytest.raises(TimeoutError):
        await st.save()
    again = Unsaved("r5", 0.1, lambda path: False)
    again.add(st)
    await again.retry()
    await again.retry()
    assert st.unsaved and len(again) == 1
    await again.retry()  # the fourth write gets through
    assert not st.unsaved and len(again) == 0
    assert (await stored(client))["node"] is None


async def test_a_value_from_the_store_replaces_what_was_not_written(client, states, monkeypatch):  # noqa: F811
    # another node took the job over meanwhile: its value stands, ours is not written
    st = await _state(client, states)
    failing(monkeypatch, lambda v: v.get("reason") == "finished")
    st.node, st.reason = None, "finished"
    with pytest.raises(TimeoutError):
        await st.save()
    await client.set(PATH, value={"node": "r2", "last_node": "r2", "runs": 2, "reason": "taken over"})
    await wait_for(lambda: st.node == "r2", timeout=10, what="their value")
    assert not st.unsaved
    again = Unsaved("r5", 0.1, lambda path: False)
    again.add(st)
    await again.retry()
    assert len(again) == 0
    assert (await stored(client))["reason"] == "taken over"


async def test_a_run_here_writes_the_state_itself(client, states, monkeypatch):  # noqa: F811
    st = await _state(client, states)
    failing(monkeypatch, lambda v: v.get("node") is None)
    st.node = None
    with pytest.raises(TimeoutError):
        await st.save()
    again = Unsaved("r5", 0.1, lambda path: True)  # a new run of it under way here
    again.add(st)
    await again.retry()
    assert len(again) == 0 and (await stored(client))["node"] == "r5"


async def test_dropping_what_was_not_written_reads_the_store_again(client, states, monkeypatch):  # noqa: F811
    st = await _state(client, states)
    failing(monkeypatch, lambda v: v.get("node") == "r1")
    st.node, st.runs = "r1", 7  # a claim ...
    with pytest.raises(TimeoutError):
        await st.save()  # ... whose write failed
    st.drop_unsaved()
    assert (st.node, st.runs, st.unsaved) == ("r5", 1, False)


STATE = STATE_PREFIX + ("any", "g", "foo", "test")


async def test_a_runs_end_that_was_not_written_is_written_again(autojump_clock, client, cr, monkeypatch):
    """Without the second write the store said "running on n1" for good,
    and a runner that the job was assigned to would wait for n1."""
    await cr.add("forty.two", code="return 42")
    refused = failing(monkeypatch, lambda v: v.get("node") is None and v.get("result") == 42)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "foo.test", "forty.two")
    await wait_for(lambda: refused, what="the end's write, refused")
    assert (await stored(client, STATE))["node"] == "n1"
    await wait_for(lambda: _ended(client), what="the end, written again")
    value = await stored(client, STATE)
    assert (value["result"], value["runs"], value["last_node"]) == (42, 1, "n1")  # it did not run again
    assert not job.state.unsaved


async def _ended(client):
    value = await stored(client, STATE)
    return value["node"] is None and value.get("result") == 42


async def test_a_claim_that_was_not_written_leaves_no_trace(autojump_clock, client, cr, monkeypatch, caplog):
    """The next claim is the job's first run again: the failed one's
    fields (this node, run 1) do not stay in the mirror.  The failure is
    a warning (`_ratelog`: at the daemons' default level)."""
    await cr.add("forty.two", code="return 42")
    refused = failing(monkeypatch, lambda v: v.get("node") == "n1" and v.get("runs") == 1)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "foo.test", "forty.two")
    await wait_for(lambda: job.state.result == 42, what="the run after the failed claim")
    assert len(refused) == 1
    value = await stored(client, STATE)
    assert (value["node"], value["runs"], value["result"]) == (None, 1, 42)
    warned = [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "could not claim" in r.getMessage()
    ]
    assert warned == ["n1: could not claim <RunnerEntry foo.test -> forty.two>: TimeoutError()"], warned
