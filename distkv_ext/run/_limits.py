"""Concurrency limits of a runner group: where their slots live and how to read them.

A runner entry's ``limits: {NAME: N}`` means: across the whole group
GROUP, at most N runs of jobs that share the limit NAME run at once.
The limit is a counting semaphore of N *slots*; this module holds the
pure part (the store layout, a holder record, the table of slots, the
waiting text), `_limitchan` the protocol that takes and frees slots,
`_limiter` a runner root's use of it.

Design (why it is built this way):

* **Slots are store entries**, one per slot in use:
  ``.distkv state limit GROUP NAME SLOT`` (SLOT: ``0`` .. ``N-1``) =
  ``{node, member, run, kind, job, since}``, written by the holder when
  it has won the slot and deleted by it when the run has ended (its
  code has stopped).  ``run why`` and ``run list`` read them to count
  the slots in use; a runner keeps a mirror of its group's slots (one
  watch), so a decision costs O(holders of NAME), not O(jobs).
* **Who wins a slot is decided on a group channel, not by a
  conditional write.**  DistKV may run several servers, and a
  conditional write is checked only by the server that receives it: two
  runners writing the same slot through two servers may both succeed
  (DistKV later keeps the write with the higher ``tock``, or, with equal
  tocks, each server the other's).  So slots are claimed exactly as
  any-node jobs are (`_lifecycle`): the claimer sends ``claim
  NAME#SLOT`` on the limit channel of the group (topic ``distkv_code run
  limit GROUP``: heartbeats, checks, MACs and replays as in `_group`),
  waits ``settle`` seconds, and wins unless a holder answered ``held``
  or a claimer with a higher rendezvous score claimed the same slot
  meanwhile; only then does it write the slot entry.  A holder answers
  every claim of its slot with ``held`` until its run has ended.
* **Every runner root is one member of the limit channel**, named
  ``NODE:KIND`` (``r1:any``, ``r1:all``, ``r1:single``), so that the
  any-, all- and single-node jobs of GROUP share their limits; for an
  all-node job each member's run takes a slot of its own.  A root joins
  the channel when its first limited run starts (that run waits
  ``timeout`` seconds to hear the group first).
* **A dead holder's slot is freed with its claims**: a slot whose holder
  (member) the channel no longer hears (``timeout``, as any-node jobs
  are taken over) counts as free, and the live member first in name
  order deletes its entry.  A runner cut off from the channel stops its
  limited runs before the others count it gone (as it stops its
  any-node jobs); they start again once it hears the group.
* **Fair order, no herd**: the waiters of one root form a queue per
  limit (first come, first served) and only its head claims; when a
  slot frees, the head of each root claims it after a delay of
  ``settle / (1 + seconds waited)``, so the root whose head has waited
  longest claims first, and the others, hearing its claim, leave that
  slot alone.  Waiting times are each machine's own (monotonic) clock:
  nothing compares two machines' clocks.
* **Several limits**: a run takes them in name order (no deadlock
  between two jobs that share two limits) and gives all back when it
  cannot have them all (stopped while waiting).
* **Hostile or stale entries**: a slot entry that is no holder record
  (written by someone else) counts as in use while it is fresh, and as
  free (logged, and deleted) once it has stayed so for ``timeout``
  seconds; one naming this member's earlier run, or a run here that
  does not hold it, is stale and deleted.  A limit lowered below the
  slots in use starts nothing until fewer than N are in use.  Each job
  counts with its own N (two jobs giving NAME different counts each
  start only while fewer than their N are in use).
"""

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from moat.util import Path

from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.whenchecks import limit_map

__all__ = [
    "LIMIT",
    "slot_base",
    "limit_topic",
    "slot_key",
    "split_key",
    "member_name",
    "Holder",
    "holder_of",
    "SlotTable",
    "job_limits",
    "waiting_text",
    "MAX_SLOTS",
]

#: The element below the state prefix under which limit slots live.
LIMIT = "limit"
#: No limit has more slots than this (`limit_map` checks N at most 10000).
MAX_SLOTS = 10000


def slot_base(state_prefix: Any, group: Any) -> Path:
    """Where the slots of ``group`` live: ``STATE + limit + GROUP``."""
    return Path.build(state_prefix) + (LIMIT, group)


def limit_topic(group: Any) -> tuple[str, ...]:
    """The message topic of the limit channel of ``group``."""
    return ("distkv_code", "run", LIMIT, str(group))


def slot_key(name: str, slot: int) -> str:
    """``NAME#SLOT``: a slot's name on the limit channel (limit names hold no ``#``)."""
    return f"{name}#{slot}"


def split_key(key: str) -> tuple[str, int] | None:
    """`slot_key`'s inverse; None for a key that is none."""
    name, sep, slot = key.rpartition("#")
    if not sep or not name or not (slot.isascii() and slot.isdigit()) or int(slot) >= MAX_SLOTS:
        return None
    return name, int(slot)


def member_name(node: str, kind: str) -> str:
    """A runner root's name on the limit channel: ``NODE:KIND``."""
    return f"{node}:{kind}"


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a slot, as its entry says: the member (``NODE:KIND``),
    its run (the channel instance), the node and kind, the job, since when
    (the holder's clock; display only)."""

    member: str
    run: str
    node: str
    kind: str
    job: str
    since: float | None = None

    def value(self) -> dict[str, Any]:
        """The slot entry's value."""
        return dataclasses.asdict(self)


def holder_of(value: Any) -> Holder | None:
    """The `Holder` a slot entry names; None if it is no holder record."""
    if not isinstance(value, Mapping):
        return None
    fields = {}
    for k in ("member", "run", "node", "kind", "job"):
        v = value.get(k)
        if not isinstance(v, str) or not v or len(v) > 4096:
            return None
        fields[k] = v
    since = value.get("since")
    ok = isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since)
    return Holder(**fields, since=float(since) if ok and since is not None else None)


@dataclasses.dataclass
class _Slot:
    holder: Holder | None  # None: the entry is no holder record
    chain: Any
    seen: float  # monotonic: when this value arrived


class SlotTable:
    """The slot entries of one group, as the store shows them:
    NAME -> {SLOT: holder (or garbage), chain}.  Pure: liveness is a
    callable ``live(name, slot, holder) -> bool`` that the caller gives."""

    def __init__(self, garbage_after: float) -> None:
        #: seconds after which an entry that is no holder record counts as free
        self.garbage_after = garbage_after
        self._by_name: dict[str, dict[int, _Slot]] = {}

    def put(self, name: str, slot: int, value: Any, chain: Any = None, now: float | None = None) -> None:
        """The entry of ``slot`` of ``name`` is now ``value`` (None: deleted)."""
        slots = self._by_name.setdefault(name, {})
        if value is None:
            slots.pop(slot, None)
            if not slots:
                del self._by_name[name]
            return
        holder = holder_of(value)
        old = slots.get(slot)
        seen = time.monotonic() if now is None else now
        if old is not None and old.holder is None and holder is None:
            seen = old.seen  # the same garbage, still: it ages
        slots[slot] = _Slot(holder, chain, seen)

    def names(self) -> list[str]:
        """The limits with an entry."""
        return sorted(self._by_name)

    def entries(self, name: str) -> Iterator[tuple[int, Holder | None, Any]]:
        """(slot, holder or None, chain) of every entry of ``name``."""
        for slot, s in sorted(self._by_name.get(name, {}).items()):
            yield slot, s.holder, s.chain

    def in_use(
        self, name: str, live: Callable[[str, int, Holder], bool], now: float | None = None
    ) -> dict[int, Holder | None]:
        """The slots of ``name`` in use: held by a live holder, or holding
        garbage that is still fresh (younger than ``garbage_after``)."""
        now = time.monotonic() if now is None else now
        res: dict[int, Holder | None] = {}
        for slot, s in self._by_name.get(name, {}).items():
            if s.holder is None:
                if now - s.seen < self.garbage_after:
                    res[slot] = None
            elif live(name, slot, s.holder):
                res[slot] = s.holder
        return res

    def stale(
        self, live: Callable[[str, int, Holder], bool], now: float | None = None
    ) -> list[tuple[str, int, Holder | None, Any]]:
        """(name, slot, holder or None, chain) of every entry not in use
        (`in_use`): its holder is gone, or it is old garbage."""
        now = time.monotonic() if now is None else now
        res = []
        for name in self.names():
            used = self.in_use(name, live, now)
            for slot, holder, chain in self.entries(name):
                if slot not in used:
                    res.append((name, slot, holder, chain))
        return res

    @staticmethod
    def free_slot(n: int, busy: set[int] | dict[int, Any]) -> int | None:
        """The lowest slot below ``n`` that is not ``busy``; None if every one is."""
        for slot in range(n):
            if slot not in busy:
                return slot
        return None


def job_limits(value: Any) -> list[tuple[str, int]]:
    """The limits of a runner entry's ``limits`` field, in the order they
    are taken (by name); [] for none.  Raises `InputRefused` for a field
    that is no limit map (`entry_problem` reports it before a run)."""
    if not value:
        return []
    try:
        return sorted(limit_map(value).items())
    except InputRefused:
        raise
    except Exception as exc:  # whatever a hostile value does: no limits it can name
        raise InputRefused(f"limits: {exc}") from None


def waiting_text(name: str, used: int, n: int, why: str | None = None) -> str:
    """What a run waiting for a slot says: ``waiting for limit bus (2/2 in
    use)``; with ``why``: ``waiting for limit bus (WHY)``."""
    return f"waiting for limit {name} ({why or f'{used}/{n} in use'})"
