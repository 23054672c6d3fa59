"""A job's next start times (``distkv client run next``): `next_starts`,
from its stored runner entry and state; `job_next_starts` reads them
from the store."""

import dataclasses
import time
from typing import Any

from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.whenchecks import local_zone

from ._calendar import Calendar, local_text
from ._calplan import upcoming
from ._entry import RunnerEntry, StateEntry, is_time
from ._explain import _Shim
from ._layout import RUN_PREFIX, STATE_PREFIX, job_name
from ._ops import get_job, job_states
from ._schedule import plan_start

__all__ = ["NextStarts", "next_starts", "job_next_starts", "MAX_NEXT_STARTS"]

#: The most start times `next_starts` computes.
MAX_NEXT_STARTS = 1000


@dataclasses.dataclass(frozen=True)
class NextStarts:
    """``times``: Unix times of the next starts (jitter included; the
    first may be now or earlier: due now); ``reason``: why the first is
    then, or why there is none; ``tz``: the zone they are shown in (the
    job's; a job without a calendar: this machine's)."""

    times: list[float]
    reason: str
    tz: str

    def iso(self) -> list[str]:
        """The times as ISO-8601 with UTC offset, in ``tz``."""
        return [local_text(t, self.tz) for t in self.times]


def next_starts(value: Any, state: Any, *, job: str, now: float | None = None, count: int = 5) -> NextStarts:
    """The next ``count`` (1 .. `MAX_NEXT_STARTS`) start times of the job named
    ``job`` (its name in its group: the jitter depends on it), from its
    runner entry's stored ``value`` and its state's (None: never ran).

    A calendar job: its next start, then its next slots (each with its
    jitter); a running one: its next slots.  Else: its next start by its
    target, then every ``repeat`` seconds from it (as if each run took no
    time).  None at all (done, no target, gave up, no sun event within a
    year; an entry whose fields make no schedule): an empty list, and the
    reason says why.  Raises ValueError for a ``count`` out of range."""
    if not 1 <= count <= MAX_NEXT_STARTS:
        raise ValueError(f"count must be 1 to {MAX_NEXT_STARTS}, not {count}")
    now = time.time() if now is None else now
    entry = _Shim(RunnerEntry, value)
    entry.job_name = job
    st = _Shim(StateEntry, state or {})
    try:
        plan = plan_start(entry, st, now)
        cal = Calendar.of(entry) if isinstance(value, dict) else None
    except (TypeError, ValueError) as exc:  # a stored entry written behind our back
        return NextStarts([], f"unusable runner entry: {exc}", local_zone())
    if cal is not None:
        times = upcoming(cal, plan, entry, st, now, count)
        return NextStarts(times, plan.reason if plan.at is not None or not times else "running", cal.tz)
    zone = local_zone()
    if plan.at is None:
        return NextStarts([], plan.reason, zone)
    times = [plan.at]
    rep = entry.repeat
    if is_time(rep) and rep > 0:
        times += [plan.at + rep * i for i in range(1, count)]
    return NextStarts(times[:count], plan.reason, zone)


async def job_next_starts(
    client: Any,
    kind: str,
    group: Any,
    path: Any,
    *,
    node: Any = None,
    count: int = 5,
    prefix: Any = RUN_PREFIX,
    state_prefix: Any = STATE_PREFIX,
    now: float | None = None,
) -> NextStarts:
    """`next_starts` of the stored job ``path`` of ``group`` (`NotFound`
    if there is none).  An all-node job: by the state of its first member
    (by name)."""
    value, _ = await get_job(client, kind, group, path, node=node, prefix=prefix)
    states = await job_states(client, kind, group, path, node=node, prefix=state_prefix)
    state = states[sorted(states)[0]] if states else None
    return next_starts(value, state, job=job_name(as_path(path, "job")), now=now, count=count)
