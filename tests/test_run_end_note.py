"""A run's end says when the job is due next: two state writes per run.

Every state write is sent on to each runner of the group.  A run used to
end with "finished" and the scheduler then noted, in a write of its own,
when the job was due next ("repeat", ``computed``): a third state write
per run, which the scheduler awaited in its pass, one job after the
other, while due jobs waited (at 10,000 jobs some waited minutes).  Now
the end's write says it (`_runend.due_next`), and the note finds
nothing to change.
"""

import time

import pytest
from moat.util import P

from distkv_ext.run import AnyRunnerRoot, StateEntry
from tests.helpers import wait_for

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.05, "rebalance_delay": 0.5}


@pytest.fixture
def saved(monkeypatch):
    """(node, reason, computed) of every state write."""
    out = []
    save = StateEntry.save

    async def counted(self, wait=False, **kw):
        out.append((self.node, self.reason, self.computed))
        return await save(self, wait, **kw)

    monkeypatch.setattr(StateEntry, "save", counted)
    return out


async def _job(client, cr, name, code="return 1", **fields):
    await cr.add("en.proc", code=code, is_async=None)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "en"), code=cr, node="n1", cfg=FAST)
    job = r.follow(P(name), create=True)
    job.code = P("en.proc")
    job.target, job.written = time.time(), time.time()
    for k, v in fields.items():
        setattr(job, k, v)
    await job.save()
    return r, job


async def test_the_end_of_a_run_says_when_it_repeats(client, cr, saved):
    r, job = await _job(client, cr, "rep", repeat=60)
    await wait_for(lambda: job.state.runs == 1 and job.state.node is None, timeout=20, what="the run's end")
    await r.scheduler._consider(job, time.time())  # what the scheduler's pass does next
    assert [node for node, *_ in saved] == ["n1", None]  # the claim and the end, no note after it
    stored = (await client.get(r.state_prefix + ("any", "en", "rep"))).value
    assert stored["reason"] == "repeat"
    assert stored["computed"] == pytest.approx(stored["stopped"] + 60)


async def test_the_end_of_a_one_off_run_says_it_is_done(client, cr, saved):
    r, job = await _job(client, cr, "once")
    await wait_for(lambda: job.state.runs == 1 and job.state.node is None, timeout=20, what="the run's end")
    await r.scheduler._consider(job, time.time())
    assert [node for node, *_ in saved] == ["n1", None]
    assert (job.state.reason, job.state.computed) == ("done", 0)


async def test_a_failed_run_still_says_failed(client, cr, saved):
    """A failure keeps its word ("failed": the status page counts
    failures by it); the scheduler's note of the retry follows."""
    _root, job = await _job(client, cr, "bad", code="raise RuntimeError('no')", repeat=60, delay=600)
    await wait_for(lambda: any(reason == "failed" for _, reason, _ in saved), timeout=20, what="the failed end")
    await wait_for(lambda: job.state.reason.startswith("retry after error"), timeout=20, what="the retry's note")
