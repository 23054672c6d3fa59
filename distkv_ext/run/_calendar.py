"""The calendar of a job: when its cron expression or sun time says it
starts (`Calendar`, from the fields ``cron`` or ``at``, ``tz``,
``location``, ``jitter`` of its runner entry).  Pure: no I/O, no clock.

Times are Unix seconds; a *slot* is a start the calendar names (07:00),
its *due* time the slot plus the job's jitter (`Calendar.jitter_of`).  A
run is "for" its slot, whatever its jitter.

Daylight saving, as cron users expect (Vixie cron's rules):

* a slot in the hour the clocks skip (spring) starts once, right after
  the gap: ``30 2 * * *`` starts at 03:00 on that day;
* the hour the clocks repeat (autumn) runs once: its first pass only.
  ``30 2 * * *`` starts at 02:30 summer time and not again at 02:30
  winter time; ``*/15 * * * *`` starts at 02:00, 02:15, 02:30, 02:45
  (summer time), then at 03:00 (winter time): the second pass of the
  hour starts nothing.  Slots are strictly increasing.

Sun times (``sunrise``, ``sunset``, ``dawn``, ``dusk``, ``noon``, with an
offset: ``sunset-900``) are astral's, one a local day (the job's zone
says what a day is).  A day without the event (polar night or day) has
no slot; `Calendar.next_after` reports those days (``no sunrise on
2026-12-02``) and looks at most `SEARCH_DAYS` days ahead.
"""

import dataclasses
import datetime as dt
import hashlib
import math
import zoneinfo
from collections.abc import Iterator
from typing import Any

from astral import Observer, sun
from croniter import CroniterBadDateError, croniter

from distkv_ext.codekit.core.whenchecks import split_sun_time

__all__ = ["Calendar", "SEARCH_DAYS", "is_calendar", "local_text", "jitter_delay"]

#: How many days ahead a sun time is looked for before the job counts as
#: not scheduled (a polar night lasts at most about half a year).
SEARCH_DAYS = 370

#: cron slots skipped in a row at most while looking for the next one (the
#: repeated hour of a per-second cron skips 3600)
_MAX_SKIP = 10_000


def is_calendar(entry: Any) -> bool:
    """Does the runner entry (with ``cron`` / ``at`` attributes) start by
    a calendar?"""
    return bool(getattr(entry, "cron", None) or getattr(entry, "at", None))


def jitter_delay(job: str, slot: float, jitter: float) -> float:
    """The delay in [0, ``jitter``) of ``job``'s start for ``slot``: a
    hash (SHA-256) of the job's name and the slot, so every node computes
    the same one."""
    if not jitter or jitter <= 0:
        return 0.0
    h = hashlib.sha256(f"{job}\0{slot:.3f}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 * float(jitter)


def local_text(t: float, tz: str | dt.tzinfo, *, seconds: bool = False) -> str:
    """``t`` as ISO-8601 in zone ``tz`` with its UTC offset
    (``2026-12-02T07:00:00+01:00``; fractions of a second only if any and
    ``seconds``)."""
    zone = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
    d = dt.datetime.fromtimestamp(t, zone)
    if not seconds or d.microsecond < 1000:
        d = d.replace(microsecond=0)
    return d.isoformat(timespec="milliseconds" if d.microsecond else "seconds")


@dataclasses.dataclass(frozen=True)
class Calendar:
    """The calendar fields of one job (see the module doc)."""

    job: str
    tz: str
    cron: str | None = None
    event: str | None = None  # sun event
    offset: float = 0.0  # seconds after the sun event
    latitude: float = 0.0
    longitude: float = 0.0
    jitter: float = 0.0

    @classmethod
    def of(cls, entry: Any, job: str | None = None) -> "Calendar | None":
        """The calendar of a runner entry (attributes ``cron``, ``at``,
        ``tz``, ``location``, ``jitter``; ``job``: its name, default its
        ``job_name``); None if it is no calendar job.  Raises ValueError
        for fields that make no calendar (`entry_problem` refuses those
        before a scheduler gets here)."""
        if not is_calendar(entry):
            return None
        name = job if job is not None else str(getattr(entry, "job_name", ""))
        tz = entry.tz
        if not isinstance(tz, str) or not tz:
            raise ValueError("a calendar job needs a time zone (tz)")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {tz!r}") from None
        jitter = entry.jitter or 0
        if not isinstance(jitter, (int, float)) or isinstance(jitter, bool) or not math.isfinite(jitter) or jitter < 0:
            raise ValueError(f"bad jitter {jitter!r}")
        if entry.cron:
            if not isinstance(entry.cron, str) or not croniter.is_valid(entry.cron):
                raise ValueError(f"bad cron expression {entry.cron!r}")
            return cls(job=name, tz=tz, cron=entry.cron, jitter=float(jitter))
        try:
            event, offset = split_sun_time(entry.at)
        except Exception as exc:  # InputRefused: a ValueError to the scheduler
            raise ValueError(str(exc)) from None
        loc = entry.location
        if not isinstance(loc, (list, tuple)) or len(loc) != 2:
            raise ValueError("a sun time needs a location [latitude, longitude]")
        lat, lon = float(loc[0]), float(loc[1])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"bad location {loc!r}")
        return cls(job=name, tz=tz, event=event, offset=offset, latitude=lat, longitude=lon, jitter=float(jitter))

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The job's time zone."""
        return zoneinfo.ZoneInfo(self.tz)

    @property
    def what(self) -> str:
        """The calendar in words (``cron 30 6 * * 1-5``, ``sunset-15m``)."""
        if self.cron:
            return f"cron {self.cron}"
        off = ""
        if self.offset:
            m = abs(self.offset) / 60
            off = f"{'+' if self.offset > 0 else '-'}{m:g}m"
        return f"{self.event}{off}"

    def jitter_of(self, slot: float) -> float:
        """This job's delay after ``slot`` (`jitter_delay`)."""
        return jitter_delay(self.job, slot, self.jitter)

    def due(self, slot: float) -> float:
        """When the start for ``slot`` is due: the slot plus its jitter."""
        return slot + self.jitter_of(slot)

    def text(self, t: float) -> str:
        """``t`` in the job's zone, ISO-8601 with offset."""
        return local_text(t, self.zone)

    # --- slots ---

    def slots(self, after: float, notes: list[str] | None = None) -> Iterator[float]:
        """The slots strictly after ``after``, in order.  Ends where none
        is found (sun times: `SEARCH_DAYS` days without the event); days
        without the sun event are described in ``notes`` (if given)."""
        if self.cron:
            return self._cron_slots(after)
        return self._sun_slots(after, notes)

    def next_after(self, after: float) -> tuple[float | None, list[str]]:
        """(the first slot after ``after`` or None, notes on days skipped
        on the way: ``no sunrise on 2026-12-02``; with None, why none)."""
        notes: list[str] = []
        for s in self.slots(after, notes):
            return s, notes
        if self.cron:
            return None, [f"cron {self.cron} names no time ahead"]
        return None, [f"no {self.event} in the next {SEARCH_DAYS} days", *notes]

    def count_between(self, lo: float, hi: float, cap: int = 1000) -> int:
        """How many slots lie strictly between ``lo`` and ``hi`` (at most ``cap``)."""
        n = 0
        for s in self.slots(lo):
            if s >= hi or n >= cap:
                break
            n += 1
        return n

    def _cron_slots(self, after: float) -> Iterator[float]:
        zone = self.zone
        start = dt.datetime.fromtimestamp(after, zone)
        it = croniter(self.cron, start)
        last = after
        skipped = 0
        while True:
            try:
                d = it.get_next(dt.datetime)
            except CroniterBadDateError:  # no such date (31 February): no slot
                return
            t = d.timestamp()
            if t <= last or _second_pass(d):
                # the repeated hour's second pass (or a time croniter gave
                # twice): jump to the end of the repeated hour
                skipped += 1
                if skipped > _MAX_SKIP:
                    return
                end = _repeat_end(d)
                if end is not None and end > t:
                    it = croniter(self.cron, dt.datetime.fromtimestamp(end - 0.5, zone))
                continue
            skipped = 0
            last = t
            yield t

    def _sun_slots(self, after: float, notes: list[str] | None) -> Iterator[float]:
        zone = self.zone
        obs = Observer(self.latitude, self.longitude)
        # the day whose event (plus offset, at most 12 h) may come after `after`
        day = dt.datetime.fromtimestamp(after - abs(self.offset) - 86400, zone).date()
        first = dt.datetime.fromtimestamp(after, zone).date()
        missing: list[dt.date] = []
        last = after
        seen = 0
        while seen < SEARCH_DAYS + 3:
            seen += 1
            t = self._event(obs, day, zone)
            if t is None:
                if day >= first:
                    missing.append(day)
            else:
                t += self.offset
                if t > last:
                    if missing and notes is not None:
                        notes.append(_no_event(self.event or "", missing))
                    missing = []
                    seen = 0
                    last = t
                    yield t
            day += dt.timedelta(days=1)
        if missing and notes is not None:
            notes.append(_no_event(self.event or "", missing))

    def _event(self, obs: Observer, day: dt.date, zone: dt.tzinfo) -> float | None:
        """The sun event of the local ``day`` (Unix seconds), None if the
        sun does not do it that day."""
        fn = getattr(sun, self.event or "")
        try:
            d = fn(obs, day, tzinfo=zone)
        except ValueError:  # astral: "Sun never reaches ..." / "always below"
            return None
        return float(d.timestamp())


def _second_pass(d: dt.datetime) -> bool:
    """Is ``d`` (fold 1) a wall time that the clocks already showed once
    (the repeated hour of autumn)?"""
    if not d.fold:
        return False
    return d.replace(fold=0).utcoffset() != d.utcoffset()


def _repeat_end(d: dt.datetime) -> float | None:
    """The end of the repeated hour that ``d`` (its second pass) lies in,
    as Unix time: the moment the clocks pass the last wall time they
    showed before they were set back."""
    first = d.replace(fold=0).utcoffset()
    second = d.utcoffset()
    if first is None or second is None or first <= second:
        return None
    delta = (first - second).total_seconds()
    t = d.timestamp()
    lo, hi = t - delta, t  # the transition lies in (lo, hi]
    zone = d.tzinfo
    while hi - lo > 0.5:
        mid = (lo + hi) / 2
        if dt.datetime.fromtimestamp(mid, zone).utcoffset() == second:
            hi = mid
        else:
            lo = mid
    return math.ceil(hi) + delta


def _no_event(event: str, days: list[dt.date]) -> str:
    """``no sunrise on 2026-12-02`` (and, for more days, until when)."""
    if len(days) == 1:
        return f"no {event} on {days[0].isoformat()}"
    return f"no {event} on {days[0].isoformat()} .. {days[-1].isoformat()} ({len(days)} days)"
