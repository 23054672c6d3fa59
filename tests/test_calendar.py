"""Calendar jobs without a server: cron in several zones, daylight saving
in Europe/Berlin (spring 2026-03-29, autumn 2026-10-25), the seconds
field, sun times against astral, polar days, jitter; and `next_start` /
`decide` of calendar jobs at fixed times: catch-up, overlap, resume."""

import datetime as dt
import zoneinfo

import pytest
from astral import Observer, sun

from distkv_ext.run import RunnerEntry, StateEntry, explain_job, next_starts, stamp_target
from distkv_ext.run._calendar import SEARCH_DAYS, Calendar, jitter_delay
from distkv_ext.run._calplan import take_slot
from distkv_ext.run._decision import Decision, Kind, StaticView, decide
from distkv_ext.run._explain import _Shim
from distkv_ext.run._policy import ANY

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def at(tz, *a, fold=0):
    return dt.datetime(*a, tzinfo=zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz, fold=fold).timestamp()


def cal(job="j", **kw):
    e = _Shim(RunnerEntry, {"code": "p", "tz": "Europe/Berlin", **kw})
    return Calendar.of(e, job)


def walls(c, after, n):
    """The next ``n`` slots after ``after`` as local ISO text (with offset)."""
    it = c.slots(after)
    return [c.text(next(it)) for _ in range(n)]


# --- cron and time zones ---


@pytest.mark.parametrize(
    "tz,first",
    [
        ("Europe/Berlin", "2026-12-03T06:30:00+01:00"),
        ("America/New_York", "2026-12-03T06:30:00-05:00"),
        ("Asia/Kolkata", "2026-12-03T06:30:00+05:30"),
        ("UTC", "2026-12-03T06:30:00+00:00"),
    ],
)
def test_cron_in_the_jobs_zone(tz, first):
    c = cal(cron="30 6 * * 1-5", tz=tz)
    after = at(tz, 2026, 12, 2, 12, 0)  # a Wednesday
    got = walls(c, after, 3)
    assert got[0] == first
    assert got[2].startswith("2026-12-07T06:30")  # Thursday, Friday, then Monday


def test_the_sixth_field_is_seconds():
    c = cal(cron="* * * * * */5", tz="UTC")
    assert walls(c, at("UTC", 2026, 12, 2, 7, 0, 1), 3) == [
        "2026-12-02T07:00:05+00:00",
        "2026-12-02T07:00:10+00:00",
        "2026-12-02T07:00:15+00:00",
    ]


def test_a_cron_that_names_no_date_is_not_scheduled():
    e = entry(cron="0 0 31 2 *", written=T0)
    assert decide(e, state(), T0, VIEW) == Decision(Kind.NOT_SCHEDULED, "cron 0 0 31 2 * names no time ahead")


# --- daylight saving (Europe/Berlin) ---

SPRING = at(BERLIN, 2026, 3, 29, 0, 50)
AUTUMN = at(BERLIN, 2026, 10, 25, 0, 50)


def test_spring_a_start_in_the_skipped_hour_happens_once_right_after_the_gap():
    assert walls(cal(cron="30 2 * * *"), SPRING, 2) == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    assert walls(cal(cron="0 * * * *"), SPRING, 3) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]
    assert walls(cal(cron="*/15 * * * *"), SPRING, 5)[3:] == ["2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00"]


def test_autumn_the_repeated_hour_runs_once():
    assert walls(cal(cron="30 2 * * *"), AUTUMN, 2) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    assert walls(cal(cron="0 * * * *"), AUTUMN, 3) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T03:00:00+01:00",
    ]
    # */15: the first pass of the repeated hour, then on after it
    assert walls(cal(cron="*/15 * * * *"), AUTUMN, 9)[4:] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:45:00+02:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_autumn_from_inside_the_repeated_hour_and_per_second():
    c = cal(cron="*/15 * * * *")
    inside = at(BERLIN, 2026, 10, 25, 2, 20, fold=1)  # the second pass
    assert walls(c, inside, 1) == ["2026-10-25T03:00:00+01:00"]
    assert walls(c, at(BERLIN, 2026, 10, 25, 2, 50, fold=0), 1) == ["2026-10-25T03:00:00+01:00"]
    per_second = cal(cron="* * * * * *")
    assert walls(per_second, at(BERLIN, 2026, 10, 25, 2, 59, 58), 3) == [
        "2026-10-25T02:59:59+02:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:00:01+01:00",
    ]


def test_slots_strictly_increase_across_a_year_of_transitions():
    c = cal(cron="*/30 * * * *")
    it = c.slots(at(BERLIN, 2026, 3, 28, 0, 0))
    last = 0.0
    for _ in range(48 * 3):
        t = next(it)
        assert t > last
        last = t


# --- the sun ---

PLACES = [
    ("Europe/Berlin", 52.52, 13.40),
    ("Australia/Sydney", -33.87, 151.21),
    ("America/Guayaquil", -0.18, -78.47),  # Quito
]


@pytest.mark.parametrize("tz,lat,lon", PLACES, ids=["Berlin", "Sydney", "Quito"])
@pytest.mark.parametrize("event", ["sunrise", "sunset", "noon", "dawn"])
def test_sun_times_match_astral_within_a_minute(tz, lat, lon, event):
    zone = zoneinfo.ZoneInfo(tz)
    c = cal(at=f"{event}-900", tz=tz, location=[lat, lon])
    start = dt.datetime(2026, 12, 2, 0, 0, tzinfo=zone)
    got = walls(c, start.timestamp(), 5)
    obs = Observer(lat, lon)
    for i, text in enumerate(got):
        day = start.date() + dt.timedelta(days=i)
        want = getattr(sun, event)(obs, day, tzinfo=zone) - dt.timedelta(minutes=15)
        assert abs(dt.datetime.fromisoformat(text).timestamp() - want.timestamp()) < 60, (day, text, want)
        assert dt.datetime.fromisoformat(text).date() == day or event != "noon"


def test_polar_night_no_sunrise_is_reported_with_its_date():
    c = cal(at="sunrise", tz="Europe/Oslo", location=[69.65, 18.96])  # Tromsø
    t, notes = c.next_after(at("Europe/Oslo", 2026, 12, 2, 12, 0))
    assert notes[0].startswith("no sunrise on 2026-12-02 ")
    assert c.text(t).startswith("2027-01-1")  # the sun is back in mid-January
    # and noon there exists every day
    n, notes = cal(at="noon", tz="Europe/Oslo", location=[69.65, 18.96]).next_after(at("Europe/Oslo", 2026, 12, 2, 0))
    assert notes == [] and c.text(n).startswith("2026-12-02T1")


def test_no_sun_event_within_a_year_is_not_scheduled():
    c = cal(at="sunrise", tz="UTC", location=[89.99, 0.0])  # the north pole: once a year at most
    t, notes = c.next_after(at("UTC", 2026, 10, 1, 0, 0))
    if t is None:
        assert notes[0] == f"no sunrise in the next {SEARCH_DAYS} days"
    e = entry(at="sunrise", tz="UTC", location=[89.99, 0.0], written=T0)
    res = explain_job(e.value, {}, T0, job="j")
    assert res["verdict"].startswith(("not scheduled: no sunrise", "starts in"))


# --- jitter ---


def test_jitter_is_deterministic_per_job_and_slot_and_in_range():
    slots = [1_800_000_000.0 + 60 * i for i in range(200)]
    d = [jitter_delay("pump", s, 30) for s in slots]
    assert d == [jitter_delay("pump", s, 30) for s in slots]
    assert all(0 <= x < 30 for x in d)
    assert len({round(x, 3) for x in d}) > 150  # spread, not one value
    assert d != [jitter_delay("lights", s, 30) for s in slots]
    assert jitter_delay("pump", slots[0], 0) == 0
    c = cal(cron="0 7 * * *", jitter=600)
    s = next(c.slots(T0))
    assert c.due(s) == s + jitter_delay("j", s, 600)


# --- the scheduler's view: next_start / decide of calendar jobs ---

T0 = at(BERLIN, 2026, 12, 2, 6, 0)  # a Wednesday, 06:00 in Berlin
SEVEN = at(BERLIN, 2026, 12, 2, 7, 0)
VIEW = StaticView(node="me", policy=ANY, assignment={"j": "me"}, live=frozenset({"me"}))


def entry(**kw):
    v = {"code": "p", "tz": "Europe/Berlin", **kw}
    e = _Shim(RunnerEntry, v)
    e.job_name = "j"
    return e


def state(**kw):
    return _Shim(StateEntry, kw)


def test_a_new_job_waits_for_its_first_slot_and_starts_at_it():
    e = entry(cron="0 7 * * *", written=T0)
    d = decide(e, state(), T0, VIEW)
    assert (d.kind, d.at, d.slot) == (Kind.WAITING, SEVEN, SEVEN)
    assert d.reason == "cron 0 7 * * *: 2026-12-02T07:00:00+01:00"
    d = decide(e, state(), SEVEN + 0.01, VIEW)  # the scheduler wakes a little late
    assert (d.kind, d.slot) == (Kind.RUN_HERE, SEVEN)
    # without a written stamp (another client): its slot of the last minute, not an old one
    e = entry(cron="0 7 * * *")
    assert decide(e, state(), SEVEN + 5, VIEW).slot == SEVEN
    assert decide(e, state(), SEVEN + 600, VIEW).kind is Kind.WAITING


@pytest.mark.parametrize("writer_off", [2 * 3600, -1800, 0])
def test_the_writers_clock_is_no_slot(writer_off):
    """A new calendar counts from the runner's clock: a writer whose clock
    is 2 h fast loses no start, one 30 min slow makes no phantom one."""
    e = entry(cron="*/10 * * * *", written=SEVEN - 5 + writer_off)
    d = decide(e, state(), SEVEN - 5, VIEW)
    assert (d.kind, d.slot) == (Kind.WAITING, SEVEN)
    d = decide(e, state(), SEVEN + 90, VIEW)  # created at 07:01:30: 07:00 is not caught up
    assert (d.kind, d.slot) == (Kind.WAITING, SEVEN + 600)


def test_an_edited_calendar_catches_up_nothing_of_the_old_one():
    e = entry(cron="30 * * * *", written=T0)
    old = state(for_target=SEVEN - 86400, for_calendar="0 7 * * *|Europe/Berlin|")
    d = decide(e, old, SEVEN + 15 * 60, VIEW)  # 06:30 was missed by the old calendar's count, not by this one
    assert (d.kind, d.slot) == (Kind.WAITING, SEVEN + 1800)
    same = state(for_target=SEVEN - 86400, for_calendar="30 * * * *|Europe/Berlin|")
    assert decide(e, same, SEVEN + 15 * 60, VIEW).slot == SEVEN - 1800  # caught up: 06:30


def test_catch_up_over_a_year_of_seconds_finds_the_latest():
    e = entry(cron="* * * * * *", written=T0, catch_up_window=366 * 86400)
    d = decide(e, state(for_target=SEVEN - 300 * 86400), SEVEN + 0.5, VIEW)
    assert (d.kind, d.slot) == (Kind.RUN_HERE, SEVEN)


def test_after_a_run_the_next_slot_after_the_one_it_ran_for():
    e = entry(cron="0 7 * * *", written=T0)
    ran = state(for_target=SEVEN, started=SEVEN, stopped=SEVEN + 5, last_node="me", runs=1)
    d = decide(e, ran, SEVEN + 10, VIEW)
    assert (d.kind, d.slot) == (Kind.WAITING, SEVEN + 86400)


def test_target_and_repeat_of_another_client_are_ignored():
    e = entry(cron="0 7 * * *", written=T0, target=T0 - 5, repeat=10)
    assert decide(e, state(), T0, VIEW).reason.startswith("cron 0 7")


@pytest.mark.parametrize("late,kind", [(1800, Kind.RUN_HERE), (2 * 3600, Kind.WAITING)])
def test_catch_up_once_within_the_window(late, kind):
    e = entry(cron="0 7 * * *", written=T0)  # it ran yesterday; the group was down at 07:00
    d = decide(e, state(for_target=SEVEN - 86400), SEVEN + late, VIEW)
    assert d.kind is kind
    if kind is Kind.RUN_HERE:
        assert d.slot == SEVEN and d.reason == "catching up the start of 2026-12-02T07:00:00+01:00 (cron 0 7 * * *)"
    else:
        assert d.slot == SEVEN + 86400
        assert "missed 2026-12-02T07:00:00+01:00 (outside the 1h catch-up window)" in d.reason


def test_several_missed_starts_are_named_by_the_last():
    e = entry(cron="0 7 * * *", written=T0 - 3 * 86400)
    d = decide(e, state(for_target=SEVEN - 4 * 86400), SEVEN + 7200, VIEW)
    assert d.reason.endswith("missed 4 starts, the last 2026-12-02T07:00:00+01:00 (outside the 1h catch-up window)")


def test_catch_up_none_and_a_window_of_ten_minutes():
    e = entry(cron="0 7 * * *", written=T0 - 86400, catch_up="none")
    # a runner that wakes a little late starts it: due, not missed
    d = decide(e, state(for_target=SEVEN - 86400), SEVEN + 2, VIEW)
    assert (d.kind, d.slot, d.reason) == (Kind.RUN_HERE, SEVEN, "cron 0 7 * * *: 2026-12-02T07:00:00+01:00")
    yesterday = state(for_target=SEVEN - 86400)
    d = decide(e, yesterday, SEVEN + 60, VIEW)
    assert (d.kind, d.slot) == (Kind.WAITING, SEVEN + 86400)
    assert d.reason.endswith("missed 2026-12-02T07:00:00+01:00 (catch-up none)")
    e = entry(cron="0 7 * * *", written=T0 - 86400, catch_up_window=600)
    assert decide(e, yesterday, SEVEN + 599, VIEW).kind is Kind.RUN_HERE
    assert "outside the 10m catch-up window" in decide(e, yesterday, SEVEN + 601, VIEW).reason


def test_catch_up_starts_only_the_latest_missed_slot_and_counts_the_others():
    e = entry(cron="*/10 * * * *", written=T0 - 86400)
    ran = state(for_target=SEVEN - 3600, stopped=SEVEN - 3590, last_node="me", runs=1)
    now = SEVEN + 15
    d = decide(e, ran, now, VIEW)
    assert (d.kind, d.slot) == (Kind.RUN_HERE, SEVEN)
    st = state(for_target=SEVEN - 3600, runs=1)
    take_slot(e, st, d.slot, now)
    assert (st.for_target, st.skipped) == (SEVEN, 5)  # 06:10 .. 06:50 passed over
    assert st.skip_note == "missed 5 starts before 2026-12-02T07:00:00+01:00"


def test_overlap_skip_consumes_the_slot_queue_starts_it_after_the_run():
    e = entry(cron="*/10 * * * *", written=T0)
    # skipped while running (the running node wrote skipped_slot): not caught up later
    skipped = state(for_target=SEVEN, skipped_slot=SEVEN + 600, skipped=1, stopped=SEVEN + 700, last_node="me")
    d = decide(e, skipped, SEVEN + 700, VIEW)
    assert (d.kind, d.slot) == (Kind.WAITING, SEVEN + 1200)
    # queued: starts at once when the run is over, for that slot
    queued = state(for_target=SEVEN, queued=SEVEN + 600, stopped=SEVEN + 700, last_node="me", reason="finished")
    e = entry(cron="*/10 * * * *", written=T0, overlap="queue")
    d = decide(e, queued, SEVEN + 700, VIEW)
    assert (d.kind, d.slot, d.at) == (Kind.RUN_HERE, SEVEN + 600, SEVEN + 700)
    st = state(for_target=SEVEN, queued=SEVEN + 600)
    take_slot(e, st, SEVEN + 600, SEVEN + 700)
    assert (st.for_target, st.queued, st.skipped) == (SEVEN + 600, None, 0)
    # ... but not after a pause or downtime of a day: then it is a missed start like any other
    d = decide(e, queued, SEVEN + 86400, VIEW)
    assert d.slot != SEVEN + 600 and "was due while it ran" not in d.reason


def test_resume_starts_at_once_without_taking_a_slot():
    e = entry(cron="0 7 * * *", written=T0)
    st = state(for_target=SEVEN, stopped=SEVEN + 30, last_node="me", resume=True, reason="triggered")
    d = decide(e, st, SEVEN + 40, VIEW)
    assert (d.kind, d.slot, d.reason) == (Kind.RUN_HERE, None, "resume (triggered)")
    take_slot(e, st, d.slot, SEVEN + 40)
    assert st.for_target == SEVEN  # the next start is still tomorrow's 07:00


def test_a_running_job_is_held_and_a_failed_one_retries_before_its_next_slot():
    e = entry(cron="0 7 * * *", written=T0, delay=10, backoff=2)
    both = StaticView(node="me", policy=ANY, assignment={"j": "me"}, live=frozenset({"me", "other"}))
    assert decide(e, state(node="other", for_target=SEVEN), SEVEN + 1, both) == Decision(
        Kind.HELD_BY, "running on other", node="other", at=None
    )
    failed = state(for_target=SEVEN, stopped=SEVEN + 5, last_node="me", backoff=2, error="x")
    d = decide(e, failed, SEVEN + 6, VIEW)
    assert (d.kind, d.at, d.slot, d.reason) == (Kind.WAITING, SEVEN + 25, None, "retry after error 2")
    gave_up = entry(cron="0 7 * * *", written=T0, max_tries=2)
    assert decide(gave_up, failed, SEVEN + 6, VIEW).slot == SEVEN + 86400  # the calendar goes on


def test_a_bad_calendar_is_an_error_not_a_crash():
    e = entry(cron="not a cron", written=T0)
    with pytest.raises(ValueError):
        decide(e, state(), T0, VIEW)
    with pytest.raises(ValueError):
        decide(entry(cron="0 7 * * *", tz="Mars/Olympus"), state(), T0, VIEW)


# --- run next, run why ---


def test_next_starts_of_a_calendar_job_with_jitter():
    v = {"code": "p", "cron": "0 7 * * *", "tz": "Europe/Berlin", "jitter": 300, "written": T0}
    res = next_starts(v, None, job="pump", now=T0, count=3)
    assert res.tz == "Europe/Berlin" and len(res.times) == 3
    for i, (t, text) in enumerate(zip(res.times, res.iso(), strict=True)):
        slot = SEVEN + 86400 * i
        assert t == slot + jitter_delay("pump", slot, 300)
        assert text.startswith(f"2026-12-0{2 + i}T07:0") and text.endswith("+01:00")
    # another job name, other delays; the same name, the same ones
    assert next_starts(v, None, job="lights", now=T0, count=3).times != res.times
    assert next_starts(v, None, job="pump", now=T0 + 1, count=3).times == res.times


def test_next_starts_of_other_jobs_and_of_none():
    res = next_starts({"code": "p", "target": T0 + 60, "repeat": 3600}, None, job="j", now=T0, count=3)
    assert res.times == [T0 + 60, T0 + 3660, T0 + 7260]
    done = next_starts({"code": "p", "target": T0 - 60}, {"for_target": T0 - 60, "runs": 1}, job="j", now=T0)
    assert (done.times, done.reason) == ([], "done")
    with pytest.raises(ValueError):
        next_starts({"code": "p", "target": T0}, None, job="j", count=0)


def test_run_why_of_a_calendar_job():
    v = {"code": "p", "cron": "0 7 * * *", "tz": "Europe/Berlin", "written": T0 - 86400}
    st = {"for_target": SEVEN - 86400, "skipped": 3, "skip_note": "skipped x (overlap skip)", "runs": 1}
    res = explain_job(v, st, SEVEN + 7200, job="j")
    assert res["verdict"] == (
        "starts in 79200 s (cron 0 7 * * *: 2026-12-03T07:00:00+01:00; "
        "missed 2026-12-02T07:00:00+01:00 (outside the 1h catch-up window))"
    )
    assert (res["calendar"], res["skipped"], res["next_start_text"]) == (
        "cron 0 7 * * * (Europe/Berlin)",
        3,
        "2026-12-03T07:00:00+01:00",
    )
    running = explain_job(v, {**st, "node": "r1", "started": SEVEN}, SEVEN + 60, job="j")
    assert running["next_start_text"] == "2026-12-03T07:00:00+01:00"
    polar = {"code": "p", "at": "sunrise", "tz": "Europe/Oslo", "location": [69.65, 18.96], "written": T0}
    res = explain_job(polar, {}, at("Europe/Oslo", 2026, 12, 2, 12, 0), job="j")
    assert "(no sunrise on 2026-12-02 .. " in res["verdict"]


def test_a_calendar_entry_is_stamped_when_its_calendar_changes():
    v = {"code": "p", "cron": "0 7 * * *", "tz": "Europe/Berlin"}
    assert stamp_target(v, None, T0)["written"] == T0
    old = {**v, "written": T0 - 5}
    assert stamp_target({**v, "info": "x"}, old, T0)["written"] == T0 - 5
    assert stamp_target({**v, "cron": "0 8 * * *"}, old, T0)["written"] == T0


def test_a_bad_stored_calendar_is_reported_not_raised():
    for v in (
        {"code": "p", "cron": "bad", "tz": "UTC"},
        {"code": "p", "cron": "0 7 * * *", "tz": "Mars/Olympus"},
        {"code": "p", "at": "sunrise", "tz": "UTC", "location": "here"},
        {"code": "p", "cron": "0 7 * * *", "tz": "UTC", "jitter": "lots"},
    ):
        res = explain_job(v, {}, T0, job="j")
        assert res["verdict"].startswith("not scheduled: unusable runner entry: "), res["verdict"]
        assert res["status"] == "broken"
        nxt = next_starts(v, None, job="j", now=T0)
        assert nxt.times == [] and nxt.reason.startswith("unusable runner entry: ")


def test_hostile_calendar_state_fields_are_dropped():
    from distkv_ext.run._entry import usable_state

    bad = {"skipped": "many", "skipped_slot": "yesterday", "queued": float("nan"), "skip_note": 5, "runs": 1}
    assert usable_state(bad, "x") == {"runs": 1}
