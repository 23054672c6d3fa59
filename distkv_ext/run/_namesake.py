"""Runners that use our name: a mistake, or a forgery.

Two runners of a group with one name would run the same jobs, so the
younger one stops (`NameClash`, exit status 2).  Younger by age, not by
start time: a heartbeat says how long its sender has run (``u``, its
monotonic clock), so each side places the other's start on its own
monotonic clock; the Unix times they started at (``s``, ``since``) are
two machines' clocks, which may be minutes apart.  Only when the two
starts are within `TIE` seconds (the news's delay could decide it
differently on each side), or a heartbeat lacks ``u`` (an older runner),
do ``since`` and then the run ids decide: both sides compare the same two
values, so exactly one of them stops.  A heartbeat under our
name must not stop us unless it is real: it must be fresh (acknowledge
one of our recent messages, so it is no replay of an earlier run of
ours), and, with a group key, its MAC says it is real; without one, its
run must be recorded in the store (`_registry.Record`), which only DistKV
users that may write runner state can do.
"""

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._registry import Record
from ._wire import Message

if TYPE_CHECKING:
    from ._group import Group  # (creates us)

logger = logging.getLogger(__name__)

__all__ = ["NameClash", "Namesakes", "TIE"]

_KEEP = 64  # runs remembered (without a key, forged ones could be many)

#: Seconds: two starts closer than this are a tie of ages (see the module doc).
TIE = 1.0


class NameClash(RuntimeError):
    """Two runners of one group use the same node name."""


class Namesakes:
    """The other runs of our name that ``group`` heard (see the module doc);
    ``record``: our runner record, if we write one."""

    def __init__(self, group: "Group", record: Record | None) -> None:
        self.group = group
        self.record = record
        self.heard_at: dict[str, float] = {}  # run -> when (monotonic) we last heard it
        self._looked_up: dict[str, float] = {}  # run -> when we last looked for its record
        self._stopping = False  # a clash made us stop

    def heard(self, msg: Message) -> None:
        """A fresh heartbeat of another run that uses our name."""
        g = self.group
        now = time.monotonic()
        self.heard_at[msg.instance] = now
        for d in (self.heard_at, self._looked_up):
            if len(d) > _KEEP:
                for inst, _ in sorted(d.items(), key=lambda kv: kv[1])[:-_KEEP]:
                    del d[inst]
        born = None if msg.age is None else now - msg.age  # its start, on our monotonic clock
        if g.keys.keyed:  # its MAC says it holds the key: real
            self.clash(msg.since, msg.instance, born)
        elif self.record is not None and g.spawn is not None:
            looked = self._looked_up.get(msg.instance)
            if looked is None or now - looked > g.timeout:  # at most once per timeout
                self._looked_up[msg.instance] = now
                g.spawn(self._confirm, msg.since, msg.instance, born)
        else:
            g.channel.drop("namesake", f"unconfirmed runner called {g.name} (no key, no records)", None)

    async def _confirm(self, since: float, instance: str, born: float | None) -> None:
        """Without a key: a namesake is real if its run is recorded."""
        if self.record is None:
            return
        if await self.record.has_run(self.group.name, instance):
            self.clash(since, instance, born)
        else:
            self.group.channel.drop("namesake", f"runner called {self.group.name}, run {instance}, not recorded", None)

    def clash(self, since: float, instance: str, born: float | None = None) -> None:
        """A real namesake: if we are the younger one, we stop.  ``born``:
        when it started, on our monotonic clock (None: its heartbeat gave
        no age); ``since``: when it started, on its wall clock."""
        g = self.group
        if born is not None and abs(born - g.born) >= TIE:
            younger = g.born > born
        else:
            younger = (since, instance) < (g.since, g.instance)
        if younger:
            self._stop(since, instance)

    def _stop(self, since: float, instance: str) -> None:
        """Stop (once), naming the other run: from its record, if there is
        one (looked up for at most ``timeout`` seconds)."""
        g = self.group
        if self._stopping:
            return
        self._stopping = True
        if self.record is not None and g.spawn is not None:
            g.spawn(self._stop_named, since, instance)
        else:
            g.on_lost(NameClash(clash_text(g, since, instance, None)))

    async def _stop_named(self, since: float, instance: str) -> None:
        g = self.group
        rec = None
        if self.record is not None:
            with anyio.move_on_after(g.timeout):
                rec = await self.record.of_run(g.name, instance)
        g.on_lost(NameClash(clash_text(g, since, instance, rec)))

    async def forget_old_runs(self) -> None:
        """Delete the records of earlier runs of our name that we have not
        heard (a runner killed without a word leaves its record behind)."""
        if self.record is None:
            return
        now = time.monotonic()
        for inst in await self.record.namesakes():
            seen = self.heard_at.get(inst)
            if seen is None or now - seen > 2 * self.group.timeout:
                await self.record.forget(inst)

    def __repr__(self) -> str:
        return f"<Namesakes of {self.group.name}: {sorted(self.heard_at)}>"


def _when(t: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(t)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def clash_text(group: "Group", since: float, instance: str, record: Mapping[str, Any] | None) -> str:
    """Why we stop: ``another runner of group at.NODE.GROUP is called NODE
    (host H, pid P, running since T)``; without its ``record`` (a runner
    of an earlier version, or one that could not write it): its run and
    since when it says it runs, by its clock."""
    name = ".".join(str(x) for x in group.topic[2:])
    text = f"another runner of group {name} is called {group.name}"
    if record is not None:
        return f"{text} (host {record.get('host', '?')}, pid {record.get('pid', '?')}, running since {_when(record.get('since', since))})"
    return f"{text} (run {instance}, running since {_when(since)} by its clock; it left no runner record saying where)"
