"""How far ahead a start at a known time is claimed: the claim's settle
time and how long a claim's state write takes lately (`_writelag`,
`_schedule.claim_lead`)."""

import anyio
import pytest
from distkv.obj import ClientEntry

from distkv_ext.run import AnyRunnerRoot, StateEntry
from distkv_ext.run._schedule import CLAIM_LEAD, claim_lead
from distkv_ext.run._writelag import SAMPLES, WriteLag
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job


class Entry:
    limits = None


def lag_of(*seconds, cap=10.0):
    """A `WriteLag` that has seen claim writes take ``seconds``."""
    w = WriteLag(cap)
    for t in seconds:
        w.wrote(t)
    return w


def test_nothing_measured_is_nothing():
    assert WriteLag(1.0).high() == 0.0


def test_one_slow_write_does_not_move_it():
    assert lag_of(*[0.02] * (SAMPLES - 1), 5.0).high() == pytest.approx(0.02)


def test_a_slow_stretch_moves_it_and_its_end_moves_it_back():
    w = lag_of(*[0.02] * SAMPLES)
    slow = 0
    while w.high() != 2.0 and slow < SAMPLES:
        w.wrote(2.0)
        slow += 1
    assert slow <= SAMPLES // 5  # within a few writes
    for _ in range(SAMPLES):
        w.wrote(0.01)
    assert w.high() == pytest.approx(0.01)


def test_capped_at_the_write_timeout_and_never_negative():
    assert lag_of(*[99.0] * SAMPLES, cap=1.5).high() == 1.5
    assert lag_of(-3.0, cap=1.5).high() == 0.0


@pytest.mark.parametrize(
    "settle, claims, write, want",
    [
        (0.25, True, 0.0, 0.25 + CLAIM_LEAD),  # a fast store: the fixed allowance
        (0.25, True, 0.01, 0.25 + CLAIM_LEAD),
        (0.25, True, 2.0, 2.25),  # slow writes: claimed that much earlier
        (0.25, False, 2.0, 2.0),  # no claim protocol: only the write
    ],
)
def test_claim_lead(settle, claims, write, want):
    assert claim_lead(Entry(), settle, claims, write) == pytest.approx(want)


def test_claim_lead_of_a_limited_job_adds_two_settles():
    e = Entry()
    e.limits = {"pumps": 1}
    assert claim_lead(e, 0.5, True, 1.0) == pytest.approx(0.5 + 1.0 + 1.0)


async def test_a_runner_claims_ahead_by_what_its_claim_writes_took(client, cr, monkeypatch):
    """Real time: the store takes 0.3 s (at least) to confirm each claim
    write; the runner measures that and claims a start that much earlier."""
    real = ClientEntry.update

    async def slow(self, value, **kw):
        if isinstance(self, StateEntry) and value.get("node") == "n1":  # a claim
            await anyio.sleep(0.3)
        return await real(self, value, **kw)

    monkeypatch.setattr(ClientEntry, "update", slow)
    await cr.add("forty.two", code="return 42")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "foo.test", "forty.two")
    await wait_for(lambda: job.state.result == 42, what="the run")
    lifecycle = r.scheduler.lifecycle
    assert lifecycle.write_lag.high() >= 0.3
    settle = r.group.claim_settle(FAST["settle"])
    assert lifecycle.claim_lead(job) >= settle + 0.3
