"""Calendar jobs run by an in-process runner (real time: the calendar is
the wall clock): a per-second cron job runs on its slots; a start due
while the last run still runs is skipped, queued or cancels it
(``overlap``).  How precisely: bench/cron.py."""

import time

import pytest
from moat.util import P

from distkv_ext.run import AnyRunnerRoot, StateEntry
from tests.helpers import wait_for

FAST = {"heartbeat": 0.2, "timeout": 1.0, "settle": 0.05, "rebalance_delay": 0.5}
LOG = []  # [job, start, stop, for_target, skipped so far]

RECORD = """
import anyio, time
import tests.test_run_cron as t
rec = [name, time.time(), None, _entry.state.for_target, _entry.state.skipped]
t.LOG.append(rec)
try:
    await anyio.sleep(secs)
finally:
    rec[2] = time.time()
"""


@pytest.fixture(autouse=True)
def clear_log():
    LOG.clear()


@pytest.fixture
def saved(monkeypatch):
    """(reason, node, skipped) of every state write."""
    out = []
    save = StateEntry.save

    async def counted(self, wait=False, **kw):
        out.append((self.reason, self.node, self.skipped, self.skip_note))
        return await save(self, wait, **kw)

    monkeypatch.setattr(StateEntry, "save", counted)
    return out


async def cron_job(client, cr, name, cron, secs, **kw):
    await cr.add("cron.rec", code=RECORD, variables=["name", "secs"], is_async=True)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "cg"), code=cr, node="n1", cfg=FAST)
    job = r.follow(P(name), create=True)
    job.code = P("cron.rec")
    job.data = {"name": name, "secs": secs}
    job.cron, job.tz, job.written = cron, "Europe/Berlin", time.time()
    for k, v in kw.items():
        setattr(job, k, v)
    await job.save()
    return job


def runs(name):
    return [x for x in LOG if x[0] == name]


async def test_a_per_second_cron_job_runs_on_its_slots(client, cr):
    await cron_job(client, cr, "tick", "* * * * * *", 0)
    await wait_for(lambda: len(runs("tick")) >= 3, timeout=15, what="three runs")
    got = runs("tick")[:3]
    slots = [r[3] for r in got]
    assert all(s == int(s) for s in slots)  # calendar seconds
    assert slots == sorted(set(slots))  # each slot once, in order
    assert all(start >= slot for _, start, _, slot, _ in got)  # never early (how late: bench/cron.py)


@pytest.mark.slow  # about 6 s of real time
async def test_overlap_skip_counts_the_skipped_starts(client, cr, saved):
    job = await cron_job(client, cr, "long", "* * * * * *", 2.5)
    await wait_for(lambda: len(runs("long")) >= 2, timeout=20, what="two runs")
    first, second = runs("long")[:2]
    assert second[1] >= first[2]  # never two at once
    assert second[3] - first[3] >= 3  # the slots due while it ran were skipped, not caught up
    assert job.state.skipped >= 2
    assert any(note and note.endswith("still ran (overlap skip)") for *_, note in saved)


@pytest.mark.slow  # about 6 s of real time
async def test_overlap_queue_starts_right_after_the_run(client, cr, saved):
    job = await cron_job(client, cr, "q", "* * * * * */2", 2.5, overlap="queue")
    await wait_for(lambda: len(runs("q")) >= 2, timeout=20, what="two runs")
    first, second = runs("q")[:2]
    assert second[1] >= first[2]
    assert second[1] - first[2] < 1.0  # at once, not at the next slot
    # for the latest slot that came due while it ran (T+2, or T+4 when a
    # loaded machine stretched the 2.5 s run past it): one start, not two
    assert first[3] < second[3] <= first[2] < second[3] + 2
    assert any(reason and "was due while it ran (queue)" in reason for reason, *_ in saved)
    # skipped: only the queued slots a later one replaced (none, or T+2
    # when T+4 came due before the stretched run ended), counted by the
    # time the queued start began
    assert second[4] == round((second[3] - first[3]) / 2) - 1
    assert all(note.endswith("came due while it waited (queue)") for *_, note in saved if note)
    assert job.state.skipped >= second[4]


async def test_overlap_cancel_stops_the_long_run(client, cr, saved):
    await cron_job(client, cr, "c", "* * * * * */2", 1000, overlap="cancel")
    await wait_for(lambda: len(runs("c")) >= 2, timeout=20, what="two runs")
    first, second = runs("c")[:2]
    assert first[2] is not None and first[2] - first[3] < 2.5  # stopped at the next slot
    assert second[3] == first[3] + 2
    assert any(reason and reason.startswith("cancelled: the start of ") for reason, *_ in saved)
    assert any(reason and reason.endswith(" is due (overlap cancel)") for reason, *_ in saved)


async def test_editing_a_running_calendar_job_keeps_it_running(client, cr, saved):
    """A calendar job has no target: an edit of its entry (here: info) is
    no "target cleared" that stops it."""
    job = await cron_job(client, cr, "keep", "* * * * * *", 1000)
    await wait_for(lambda: len(runs("keep")) >= 1 and job.state.node == "n1", timeout=15, what="the run")
    job.info = "edited"
    await job.save()
    await wait_for(lambda: job.state.skipped >= 1, timeout=10, what="a skipped start")
    assert runs("keep")[0][2] is None and len(runs("keep")) == 1  # still the first run
    assert not any(reason == "target cleared" for reason, *_ in saved)
