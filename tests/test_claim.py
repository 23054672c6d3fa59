"""The claim state machine (`distkv_ext.run._claim`), without a server:
every transition on its own, the illegal ones, and the queries."""

import itertools

import pytest

from distkv_ext.run._claim import TRANSITIONS, Claim, Event, IllegalTransition, Phase, StopRequest

P, E = Phase, Event

LEGAL = {
    (P.CLAIMING, E.BEAT): P.BEATEN,
    (P.CLAIMING, E.SETTLED): P.WRITING,
    (P.CLAIMING, E.CUT_OFF): P.BEATEN,
    (P.CLAIMING, E.STOP): P.ABANDONED,
    (P.CLAIMING, E.RELEASE): P.RELEASED,
    (P.BEATEN, E.BEAT): P.BEATEN,
    (P.BEATEN, E.SETTLED): P.BEATEN,
    (P.BEATEN, E.CUT_OFF): P.BEATEN,
    (P.BEATEN, E.STOP): P.ABANDONED,
    (P.BEATEN, E.RELEASE): P.RELEASED,
    (P.WRITING, E.WROTE): P.HELD,
    (P.WRITING, E.WRITE_FAILED): P.BEATEN,
    (P.WRITING, E.STOP): P.ABANDONED,
    (P.WRITING, E.FENCE): P.FENCED,
    (P.WRITING, E.RELEASE): P.RELEASED,
    (P.HELD, E.STOP): P.STOPPING,
    (P.HELD, E.FENCE): P.FENCED,
    (P.HELD, E.RELEASE): P.RELEASED,
    (P.STOPPING, E.STOP): P.STOPPING,
    (P.STOPPING, E.FENCE): P.FENCED,
    (P.STOPPING, E.RELEASE): P.RELEASED,
    (P.ABANDONED, E.BEAT): P.ABANDONED,
    (P.ABANDONED, E.SETTLED): P.ABANDONED,
    (P.ABANDONED, E.CUT_OFF): P.ABANDONED,
    (P.ABANDONED, E.WROTE): P.STOPPING,
    (P.ABANDONED, E.WRITE_FAILED): P.ABANDONED,
    (P.ABANDONED, E.STOP): P.ABANDONED,
    (P.ABANDONED, E.RELEASE): P.RELEASED,
    (P.FENCED, E.WROTE): P.FENCED,
    (P.FENCED, E.WRITE_FAILED): P.FENCED,
    (P.FENCED, E.STOP): P.FENCED,
    (P.FENCED, E.RELEASE): P.RELEASED,
}


def claim_in(phase, stop=None):
    c = Claim(over_channel=True)
    c.phase = phase
    c.stop = stop
    return c


def fire(c, event):
    """Send ``event`` through the method that stands for it."""
    return {
        E.BEAT: c.beat,
        E.SETTLED: lambda: c.settled(connected=True),
        E.CUT_OFF: lambda: c.settled(connected=False),
        E.WROTE: c.wrote,
        E.WRITE_FAILED: c.write_failed,
        E.STOP: lambda: c.request_stop("because"),
        E.FENCE: lambda: c.fence("taken over by x"),
        E.RELEASE: c.release,
    }[event]()


def test_the_table_is_the_one_documented_here():
    assert TRANSITIONS == LEGAL


@pytest.mark.parametrize(("phase", "event"), sorted(LEGAL, key=lambda k: (k[0].value, k[1].value)))
def test_legal_transition(phase, event):
    c = claim_in(phase)
    assert fire(c, event) is LEGAL[phase, event]
    assert c.phase is LEGAL[phase, event]


ILLEGAL = [(p, e) for p, e in itertools.product(Phase, Event) if (p, e) not in LEGAL]


@pytest.mark.parametrize(("phase", "event"), ILLEGAL)
def test_illegal_transition_raises_and_changes_nothing(phase, event):
    c = claim_in(phase, stop=StopRequest("earlier"))
    with pytest.raises(IllegalTransition, match=f"{phase.name}.*{event.name}"):
        fire(c, event)
    assert c.phase is phase and c.stop == StopRequest("earlier")


def test_released_takes_nothing():
    assert all((P.RELEASED, e) not in LEGAL for e in Event)


def test_start_phase_by_kind():
    assert Claim(over_channel=True).phase is P.CLAIMING  # any-node jobs claim first
    assert Claim(over_channel=False).phase is P.WRITING  # single/all-node jobs write the state at once


def test_stop_request_first_reason_stays_flags_add_up():
    c = claim_in(P.HELD)
    c.request_stop("entry changed", restart=True)
    c.request_stop("entry deleted", delete_state=True)
    c.request_stop("target cleared")
    assert c.phase is P.STOPPING
    assert c.stop == StopRequest("entry changed", restart=True, delete_state=True)


def test_fence_keeps_an_earlier_stop_and_records_why():
    c = claim_in(P.HELD)
    c.request_stop("code changed", restart=True)
    c.fence("taken over by n2")
    assert (c.phase, c.stop, c.fenced_by) == (P.FENCED, StopRequest("code changed", restart=True), "taken over by n2")
    c = claim_in(P.HELD)
    c.fence("also running on n3")
    assert c.stop == StopRequest("also running on n3")


QUERIES = {
    # phase: (contested, answers_claims, stop_requested, may_write, holds_state)
    P.CLAIMING: (True, False, False, False, False),
    P.BEATEN: (False, False, False, False, False),
    P.WRITING: (False, True, False, True, False),
    P.HELD: (False, True, False, False, True),
    P.STOPPING: (False, False, True, False, True),
    P.ABANDONED: (False, False, True, False, False),
    P.FENCED: (False, False, True, False, False),
    P.RELEASED: (False, False, True, False, False),
}


@pytest.mark.parametrize("phase", list(Phase))
def test_queries(phase):
    c = claim_in(phase)
    assert (c.contested, c.answers_claims, c.stop_requested, c.may_write, c.holds_state) == QUERIES[phase]


def test_an_any_node_run_from_claim_to_end():
    c = Claim(over_channel=True)
    assert c.settled(connected=True) is P.WRITING and c.answers_claims
    assert c.wrote() is P.HELD and c.holds_state
    assert c.request_stop("runner stopped", restart=True) is P.STOPPING and c.holds_state
    assert c.release() is P.RELEASED


def test_beaten_early_the_settle_still_ends():
    c = Claim(over_channel=True)
    c.beat()  # a recent better claim of another node
    assert c.settled(connected=True) is P.BEATEN and not c.may_write


def test_stopped_while_writing_and_the_write_got_through():
    c = Claim(over_channel=False)
    c.request_stop("entry changed", restart=True)
    assert not c.holds_state
    assert c.wrote() is P.STOPPING and c.holds_state  # the end clears the state it wrote


def test_fenced_while_writing_stays_fenced():
    c = Claim(over_channel=True)
    c.settled(connected=True)
    c.fence("also running on n9")
    assert c.wrote() is P.FENCED and not c.holds_state
