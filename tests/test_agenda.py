"""The scheduler's agenda: what it looks at when, and how often a full
pass over every job comes (`_agenda`)."""

import time

import pytest

from distkv_ext.run._agenda import FULL_PASS, FULL_PASS_SHARE, MAX_FULL_PASS, Agenda


def test_the_first_take_is_a_full_pass_then_only_what_changed_or_is_due():
    agenda = Agenda()
    assert agenda.take(100.0) is None
    agenda.changed(("a",))
    agenda.look_at(("b",), 103.0)
    agenda.look_at(("c",), 200.0)
    assert agenda.take(101.0) == {("a",)}
    assert agenda.take(103.0) == {("b",)}
    assert agenda.next_wake() == 100.0 + FULL_PASS  # before c's 200
    assert agenda.take(100.0 + FULL_PASS) is None  # the safety net
    agenda.check()


def test_a_cheap_full_pass_keeps_the_ten_seconds():
    agenda = Agenda()
    assert agenda.take(0.0) is None
    agenda.full_pass_took(0.0, 0.01)  # a few hundred jobs
    assert agenda.next_wake() == FULL_PASS
    assert agenda.take(FULL_PASS - 0.1) == set()
    assert agenda.take(FULL_PASS) is None


@pytest.mark.parametrize("cost", [0.3, 0.5, 1.0])
def test_a_costly_full_pass_spaces_the_next_by_its_share(cost):
    agenda = Agenda()
    assert agenda.take(50.0) is None
    agenda.full_pass_took(50.0, cost)
    spaced = cost / FULL_PASS_SHARE
    assert FULL_PASS < spaced <= MAX_FULL_PASS
    assert agenda.next_wake() == pytest.approx(50.0 + spaced)
    assert agenda.take(50.0 + spaced - 0.5) == set()
    assert agenda.take(50.0 + spaced) is None


def test_however_costly_the_next_full_pass_comes_within_the_maximum():
    agenda = Agenda()
    assert agenda.take(0.0) is None
    agenda.full_pass_took(0.0, 100.0)  # a runner stuck in the middle of it
    assert agenda.next_wake() == MAX_FULL_PASS
    assert agenda.take(MAX_FULL_PASS) is None


def test_a_change_of_everything_still_asks_for_a_full_pass_at_once():
    # a member came or went (`Scheduler.group_changed`): a costly last pass
    # does not delay the one that computes the new assignment
    agenda = Agenda()
    assert agenda.take(0.0) is None
    agenda.full_pass_took(0.0, 1.0)
    agenda.everything()
    assert agenda.take(1.0) is None


def test_due_jobs_still_come_between_spaced_full_passes():
    agenda = Agenda()
    assert agenda.take(0.0) is None
    agenda.full_pass_took(0.0, 0.6)  # next full pass at 30
    agenda.look_at(("j",), 12.0)
    assert agenda.next_wake() == 12.0
    assert agenda.take(12.0) == {("j",)}
    assert agenda.next_wake() == pytest.approx(0.6 / FULL_PASS_SHARE)


def test_only_a_full_pass_is_metered_with_the_threads_cpu_clock():
    """A pass that is not full reports no cost, so it reads no CPU clock
    (a system call that took 0.1-0.5 ms in a busy runner, hundreds of
    passes a second); the meter a pass gets agrees with what `take`
    then says."""
    agenda = Agenda()
    meter = agenda.meter(0.0)
    assert meter is time.thread_time
    assert agenda.take(0.0) is None
    agenda.changed(("a",))
    meter = agenda.meter(1.0)
    assert meter() == 0.0 and meter is not time.thread_time
    assert agenda.take(1.0) == {("a",)}
    assert agenda.meter(FULL_PASS) is time.thread_time
    agenda.everything()
    assert agenda.meter(2.0) is time.thread_time
    assert agenda.take(2.0) is None
