"""The limit slots of one group as one member takes and frees them: `LimitChannel`.

See `_limits` for the design: the claim protocol on the group's limit
channel, the slot entries in the store, who counts as holding a slot,
the queue of waiting runs, the sweep of stale entries.  `_limiter`'s
`Limits` (one per runner root) uses one channel per group.
"""

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
from moat.util import NotGiven, Path

from ._assign import score
from ._config import RunnerConfig
from ._entry import RunnerEntry
from ._group import Group
from ._groupauth import GroupKeys
from ._limits import (
    Holder,
    SlotTable,
    limit_topic,
    member_name,
    slot_base,
    slot_key,
    split_key,
    waiting_text,
)
from ._outbox import MsgType

if TYPE_CHECKING:
    from ._running import Running  # (imports _admin, which imports _host, which imports us)

logger = logging.getLogger(__name__)

__all__ = ["LimitChannel", "LimitHost"]

#: forget others' claims of a slot after this many settle times
_RECENT_SETTLES = 4


class LimitHost(Protocol):
    """What the limits need of their runner root."""

    @property
    def client(self) -> Any: ...

    @property
    def node(self) -> str: ...

    @property
    def config(self) -> RunnerConfig: ...

    @property
    def group_keys(self) -> GroupKeys: ...

    @property
    def state_prefix(self) -> Path: ...

    @property
    def kind(self) -> str: ...

    def limit_group_of(self, entry: RunnerEntry) -> Any: ...


@dataclasses.dataclass
class _Hold:
    run: "Running"
    name: str
    slot: int
    chain: Any = NotGiven  # the slot entry's, once written


class _Contest:
    __slots__ = ("beaten",)

    def __init__(self) -> None:
        self.beaten = False


class LimitChannel:
    """The limits of one group, as one member sees and takes them."""

    def __init__(self, host: LimitHost, group: Any) -> None:
        cfg = host.config
        self.host = host
        self.cfg = cfg
        self.name = str(group)
        self.member = member_name(host.node, host.kind)
        self.base = slot_base(host.state_prefix, group)
        self.table = SlotTable(garbage_after=cfg.timeout)
        self.group = Group(
            host.client,
            limit_topic(group),
            self.member,
            ping=cfg.heartbeat,
            timeout=cfg.timeout,
            on_change=self._changed,
            load=lambda: len(self.held),
            on_claim=self._on_claim,
            on_lost=self._lost,
            keys=host.group_keys,
        )
        self.held: dict[str, _Hold] = {}  # slot key -> our hold
        self.contests: dict[str, _Contest] = {}  # slot key -> our claim, settling
        self.recent: dict[str, tuple[str, float]] = {}  # slot key -> (member, when) of others' claims
        self.queues: dict[str, list[Running]] = {}  # limit -> our runs waiting for it, first come first
        self.lost: BaseException | None = None
        self._change = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._warned: set[tuple[str, int]] = set()
        self._sweeping = self._sweep_again = False

    # --- running ---

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Join the channel and mirror the slots, until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(self.group.run)
            await tg.start(self._watch)
            task_status.started()

    async def _watch(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        started = False
        base = tuple(self.base)
        while True:
            try:
                async with self.host.client.watch(self.base, fetch=True, nchain=2, long_path=True) as w:
                    async for msg in w:
                        if "path" not in msg:
                            if not started and msg.get("state", "") == "uptodate":
                                started = True
                                task_status.started()
                            continue
                        p = tuple(msg["path"])
                        self._seen(p[len(base) :] if p[: len(base)] == base else p, msg)
            except Exception as exc:  # dropped by the server, or worse: nothing may crash a runner; load again
                logger.warning("%s: the watch of limit slots %s broke: %r", self.member, self.base, exc)
            if not started:
                started = True
                task_status.started()
            await anyio.sleep(self.cfg.heartbeat)

    def _seen(self, path: tuple[Any, ...], msg: Any) -> None:
        """One slot entry as the watch gives it (anything: nothing may crash us)."""
        try:
            if (
                len(path) != 2
                or not isinstance(path[0], str)
                or not (str(path[1]).isascii() and str(path[1]).isdigit())
            ):
                return
            name, slot = path[0], int(path[1])
            if split_key(slot_key(name, slot)) is None:
                return
            value = msg.get("value", NotGiven)
            self.table.put(name, slot, None if value is NotGiven else value, msg.get("chain"))
            self._poke()
            self._sweep_soon()
        except Exception as exc:
            logger.warning("%s: unusable limit slot entry at %r: %r", self.member, path, exc)

    def _lost(self, exc: BaseException) -> None:
        self.lost = exc
        self._changed()

    def _poke(self) -> None:
        """Something changed (a slot entry, a claim, the members): wake the waiters."""
        evt, self._change = self._change, anyio.Event()
        evt.set()

    # --- who counts ---

    @property
    def usable(self) -> bool:
        """We hear the channel and have heard it long enough to know its members."""
        return self.lost is None and self.group.ready and self.group.connected

    def live(self, name: str, slot: int, holder: Holder) -> bool:
        """Does ``holder`` hold ``slot`` of ``name``, as far as we can tell?
        Ours only while we hold it; another member's while we hear it."""
        if holder.member == self.member:
            return holder.run == self.group.instance and slot_key(name, slot) in self.held
        return self.group.is_live(holder.member)

    def in_use(self, name: str) -> dict[int, Holder | None]:
        """The slots of ``name`` in use: the store's live ones and ours."""
        used = self.table.in_use(name, self.live)
        for h in self.held.values():
            if h.name == name:
                used.setdefault(h.slot, None)
        return used

    # --- the claim protocol ---

    def _on_claim(self, msg_type: MsgType, key: str, member: str) -> None:
        """A "claim" or "held" of another member for a slot (`_limits` design)."""
        if split_key(key) is None:
            return
        hold = self.held.get(key)
        if hold is not None:
            if msg_type == "claim":
                self.group.send_claim("held", key)
            elif score(key, member) > score(key, self.member):
                # both hold it (claims crossed unseen): the lower score stops
                logger.warning("%s: %s also holds limit slot %s: stopping %s", self.member, member, key, hold.run)
                hold.run.stop(f"limit slot {key} also held by {member}", restart=True)
            return
        contest = self.contests.get(key)
        if contest is not None and (msg_type == "held" or score(key, member) > score(key, self.member)):
            contest.beaten = True
        if msg_type == "claim":
            self.recent[key] = (member, time.monotonic())
        self._poke()

    def _recently_claimed(self, name: str) -> set[int]:
        """Slots of ``name`` another member claimed within a few settle times."""
        cut = time.monotonic() - _RECENT_SETTLES * max(self.cfg.settle, 0.01)
        self.recent = {k: v for k, v in self.recent.items() if v[1] > cut}
        res = set()
        for key in self.recent:
            nk = split_key(key)
            if nk is not None and nk[0] == name:
                res.add(nk[1])
        return res

    async def take(
        self, name: str, n: int, run: "Running", job: str, say: Callable[[str | None], Awaitable[None]]
    ) -> None:
        """Return once ``run`` holds a slot of ``name`` (at most ``n`` in
        use); ``say(text)`` tells what it waits for, while it waits."""
        queue = self.queues.setdefault(name, [])
        queue.append(run)
        since = time.monotonic()
        said: str | None = None
        try:
            while True:
                changed = self._change  # what changes while we look counts: no change missed
                text = None
                if not self.usable:
                    text = waiting_text(name, 0, n, "hearing its group" if self.lost is None else "group lost")
                else:
                    used = self.in_use(name)
                    if len(used) >= n:
                        text = waiting_text(name, len(used), n)
                    elif queue[0] is not run:  # a slot is free: the runs before it here go first
                        text = waiting_text(name, len(used), n)
                    elif await self._try(name, n, run, job, since):
                        return
                if text is not None and text != said:
                    said = text
                    await say(text)
                with anyio.move_on_after(self.cfg.timeout):
                    await changed.wait()
                self._sweep_soon()  # garbage ages, holders go: without a change to say so
        finally:
            queue.remove(run)
            if not queue:
                del self.queues[name]
            self._poke()

    async def _try(self, name: str, n: int, run: "Running", job: str, since: float) -> bool:
        """One claim of a free slot of ``name`` by the head of its queue; True if won."""
        cfg = self.cfg
        await anyio.sleep(cfg.settle / (1 + time.monotonic() - since))  # the longest waiter claims first
        busy = set(self.in_use(name)) | self._recently_claimed(name)
        slot = SlotTable.free_slot(n, busy)
        if slot is None or len(self.in_use(name)) >= n or not self.usable:
            return False
        key = slot_key(name, slot)
        contest = self.contests[key] = _Contest()
        try:
            self.group.send_claim("claim", key)
            await anyio.sleep(cfg.settle)
        finally:
            del self.contests[key]
        if contest.beaten or not self.usable or slot in self.in_use(name):
            return False  # beaten, cut off, or its entry names a live holder (a claim we did not hear)
        hold = self.held[key] = _Hold(run, name, slot)  # from now on: answer "held"
        holder = Holder(self.member, self.group.instance, self.host.node, self.host.kind, job, time.time())
        try:
            with anyio.fail_after(cfg.write_seconds):
                res = await self.host.client.set(self.base + (name, str(slot)), value=holder.value(), nchain=2)
            hold.chain = res.get("chain") if hasattr(res, "get") else None
        except Exception as exc:  # refused, unreachable, too slow: not won
            logger.info("%s: could not write limit slot %s: %r", self.member, key, exc)
            with anyio.CancelScope(shield=True):
                await self._free(key)
            await anyio.sleep(cfg.settle)
            return False
        return True

    async def give_back(self, run: "Running") -> None:
        """Free the slots ``run`` holds (delete their entries)."""
        for key in [k for k, h in self.held.items() if h.run is run]:
            await self._free(key)

    async def _free(self, key: str) -> None:
        hold = self.held.pop(key, None)
        self._poke()
        if hold is None:
            return
        path = self.base + (hold.name, str(hold.slot))
        try:
            with anyio.fail_after(self.cfg.write_seconds):
                if hold.chain is NotGiven or hold.chain is None:
                    await self.host.client.delete(path, nchain=2)
                else:
                    await self.host.client.delete(path, chain=hold.chain, nchain=2)
        except Exception as exc:  # overwritten meanwhile, or unreachable: the sweep deletes it later
            logger.debug("%s: could not delete limit slot %s: %r", self.member, key, exc)
            self._sweep_soon()

    # --- members ---

    def _changed(self) -> None:
        """The channel's members or our connection changed."""
        if self.held and (self.lost is not None or not self.group.connected):
            for hold in list(self.held.values()):
                if not hold.run.claim.stop_requested:
                    hold.run.stop(f"cut off from the limit group (limit {hold.name})", restart=True)
        self._poke()
        self._sweep_soon()

    def _sweep_soon(self) -> None:
        """Sweep (`_sweep`) soon: at most one sweep runs, and one more
        follows if asked for meanwhile."""
        if self._sweeping:
            self._sweep_again = True
        elif self._tg is not None:
            self._sweeping = True
            self._tg.start_soon(self._sweeps)

    async def _sweeps(self) -> None:
        try:
            while True:
                self._sweep_again = False
                await self._sweep()
                if not self._sweep_again:
                    return
                await anyio.sleep(self.cfg.heartbeat)
        finally:
            self._sweeping = False

    async def _sweep(self) -> None:
        """Delete the entries of slots not in use: a gone holder's, old
        garbage (the live member first in name order does that), and
        entries naming this member that it does not hold (each member
        its own)."""
        if not self.usable:
            return
        first = min(m for m in (*self.group.live(), self.member))
        for name, slot, holder, chain in self.table.stale(self.live):
            mine = holder is not None and holder.member == self.member
            if not mine and self.member != first:
                continue
            if holder is None and (name, slot) not in self._warned:
                self._warned.add((name, slot))
                logger.warning("%s: limit slot %s/%s holds no holder record: counted as free", self.member, name, slot)
            try:
                with anyio.fail_after(self.cfg.write_seconds):
                    await self.host.client.delete(self.base + (name, str(slot)), chain=chain, nchain=2)
            except Exception as exc:  # changed meanwhile (or deleted by another): fine
                logger.debug("%s: limit slot %s/%s not swept: %r", self.member, name, slot, exc)
