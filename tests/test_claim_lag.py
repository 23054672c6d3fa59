"""A claim settles at least as long as the group's channel takes.

Under load the channel is slow: a rival's claim sent when ours was takes
as long to reach us as our own heartbeats take to come back.  With a
fixed 0.25 s settle both runners wrote the job's state and one of them
stopped again ("X also runs J"); 4,400 times in the scale benchmark's
fresh start of 10,000 jobs.  `_echolag` measures the round trip."""

import anyio
import pytest

from distkv_ext.run import AnyRunnerRoot
from distkv_ext.run._assign import score
from distkv_ext.run._claim import Phase
from distkv_ext.run._echolag import LAG_MARGIN, EchoLag, settle_time
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job

# --- the measure (pure) ---


def test_no_echo_yet_no_lag():
    assert EchoLag(8).longest(100.0, 0.5) == 0.0


def test_the_longest_round_trip_within_the_window_counts():
    lag = EchoLag(8)
    lag.heard(sent=10.0, now=10.1)
    lag.heard(sent=10.5, now=11.7)  # 1.2 s
    lag.heard(sent=11.0, now=11.8)
    assert lag.longest(12.0, 0.5) == pytest.approx(1.2)
    assert lag.longest(19.0, 0.5) == pytest.approx(7.5)  # nothing back since: at least that long out
    lag.heard(sent=19.0, now=19.05)
    assert lag.longest(19.1, 0.5) == pytest.approx(1.2)  # the slow one is still in the window
    assert lag.longest(19.8, 0.5) == pytest.approx(0.8)  # it left the window; 11.0's 0.8 s stays
    lag.heard(sent=25.0, now=25.05)
    assert lag.longest(25.1, 0.5) == pytest.approx(0.05)


def test_heartbeats_still_out_count_as_lag():
    lag = EchoLag(8)
    lag.heard(sent=10.0, now=10.05)
    assert lag.longest(10.4, 0.5) == pytest.approx(0.05)  # the next one is not due back yet
    assert lag.longest(12.0, 0.5) == pytest.approx(1.5)  # the one sent at 10.5 has been out 1.5 s


def test_a_sent_time_ahead_of_now_is_no_delay():
    lag = EchoLag(8)
    lag.heard(sent=20.0, now=10.0)  # cannot happen (our own clock); it must not count as negative
    assert lag.longest(10.0, 0.5) == 0.0


def test_samples_are_bounded():
    lag = EchoLag(1e9)
    for i in range(10_000):
        lag.heard(sent=float(i), now=i + 0.01)
    assert len(lag._samples) <= 64


@pytest.mark.parametrize(
    ("base", "lag", "timeout", "want"),
    [
        (0.25, 0.0, 2.0, 0.25),  # a quiet channel: the configured settle
        (0.25, 0.1, 2.0, 0.25),  # faster than the settle already covers
        (0.25, 0.4, 2.0, 0.4 * LAG_MARGIN),
        (0.25, 5.0, 2.0, 1.0),  # at most half the timeout...
        (1.5, 5.0, 2.0, 1.5),  # ...but never less than configured
    ],
)
def test_settle_time(base, lag, timeout, want):
    assert settle_time(base, lag, timeout) == pytest.approx(want)


# --- a runner on a slow channel ---


async def test_a_rival_claim_later_than_the_settle_but_within_the_round_trip_wins(autojump_clock, cluster, cr):
    """The channel takes 0.3 s (every message this runner sends); a
    rival's claim arrives 0.3 s after ours, later than the configured
    settle (0.2 s): it beats ours, and we write nothing."""
    await cr.add("noop", code="return 1")
    async with cluster.client() as c1:
        real_send = c1.msg_send

        async def slow_send(*a, **kw):
            await anyio.sleep(0.3)
            return await real_send(*a, **kw)

        c1.msg_send = slow_send
        r1 = await AnyRunnerRoot.as_handler(c1, subpath=("any", "lag"), code=cr, node="n1", cfg=FAST)
        await r1.wait_ready()
        await anyio.sleep(3)  # heartbeats came back: the round trip is measured
        settle = r1.group.claim_settle(FAST["settle"])
        assert 0.3 * LAG_MARGIN - 0.05 <= settle <= FAST["timeout"] / 2

        name = next(f"j{i}" for i in range(100) if score(f"j{i}", "n2") > score(f"j{i}", "n1"))
        claimed = anyio.Event()
        send_claim = r1.group.send_claim

        def noting(msg_type, job):
            if msg_type == "claim":
                claimed.set()
            send_claim(msg_type, job)

        r1.group.send_claim = noting
        job = await add_job(r1, name, "noop")
        with anyio.fail_after(10):
            await claimed.wait()
        run = next(iter(r1.scheduler.jobs.values()))
        await anyio.sleep(0.3)  # the rival's claim, sent with ours, arrives now
        assert run.claim.phase is Phase.CLAIMING  # a fixed 0.2 s settle had ended: it wrote
        r1.scheduler.lifecycle.claim_message("claim", job.job_name, "n2")
        assert run.claim.phase is Phase.BEATEN
        await wait_for(run.done.is_set, what="the claim ends")
        assert run.number == 0  # it never wrote the state (a claim's write numbers its run)


def test_the_kept_longest_is_that_of_the_samples_in_the_window():
    """`longest` keeps its maximum up to date instead of scanning the
    samples per claim; it must equal the scan's, whatever the order."""
    import random

    rnd = random.Random(7)
    lag, now = EchoLag(3.0), 0.0
    for _ in range(5000):
        now += rnd.choice((0.01, 0.1, 0.5, 2.0))
        lag.heard(sent=now - rnd.random() * rnd.choice((0.1, 1.0, 5.0)), now=now)
        got = lag.longest(now, 1e9)  # (the interval so long that only the samples count)
        assert got == max((r for t, r in lag._samples if t >= now - 3.0), default=0.0)
