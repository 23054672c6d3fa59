"""`_ratelog.RateLog`: a warning that may come thousands of times a
minute, logged the first time and then at most once per interval."""

import logging

from distkv_ext.run._ratelog import RateLog

log = logging.getLogger("tests.ratelog")


def lines(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == log.name]


def test_the_first_is_logged_at_once(caplog):
    r = RateLog(log, "n1: could not claim", every=60)
    r.add("j1: TimeoutError()", now=100.0)
    assert lines(caplog) == [("WARNING", "n1: could not claim j1: TimeoutError()")]


def test_more_within_the_interval_wait_and_are_counted(caplog):
    r = RateLog(log, "n1: could not claim", every=60)
    r.add("j1: x", now=100.0)
    for n in range(2, 1002):
        r.add(f"j{n}: x", now=100.0 + n / 100)
    assert len(lines(caplog)) == 1  # a thousand more within the minute: no line yet
    r.add("j9999: y", now=160.0)
    assert lines(caplog)[-1] == ("WARNING", "n1: could not claim: 1001 times in the last 60 s; latest: j9999: y")
    assert (r.count, r.total) == (0, 1002)


def test_after_a_quiet_interval_one_is_logged_alone(caplog):
    r = RateLog(log, "what", every=10)
    r.add("a", now=0.0)
    r.add("b", now=25.0)
    assert [m for _, m in lines(caplog)] == ["what a", "what b"]


def test_a_huge_detail_is_cut(caplog):
    r = RateLog(log, "what", every=10)
    r.add("x" * 10_000, now=0.0)
    assert len(lines(caplog)[0][1]) == len("what ") + 300
