"""Membership of a runner group: heartbeats over DistKV's message channel.

Every runner of a group sends a heartbeat (``client.msg_send``) every
``ping`` seconds and listens to the others' (``client.msg_monitor``).  A
node not heard from for ``timeout`` seconds is gone; a runner that stops
cleanly says so, and the others react at once.  DistKV's own runner uses
an asyncactor group instead, whose tag rotation takes 49 s or more to
notice a dead node; this takes ``timeout`` (2 s by default).

A runner also watches its *own* heartbeats come back: if they stop, it is
cut off, and it must stop its any-node jobs before the others take them
over (`Group.connected`).

Nothing that arrives is believed unchecked: `_groupauth.Channel` checks
each message (`_wire`: every field; with a group key: its MAC; the
sender's counter: no replays) and drops what fails.  A node counts as a
live member only while its heartbeats are *fresh* (they acknowledge one
of our recent messages), so a recorded heartbeat replayed later keeps
no dead node alive; claims and "held" answers count only from runs whose
heartbeats we hear.  Each heartbeat carries the sender's tags
(``run all --tag``; `_placement`): they never change during a run, but a
member that joins later, or an observer (``run why``, the status page),
learns them from the first heartbeat it hears, with nothing to ask and
no state to keep in step; a runner without tags sends none (the field
is left out).  After being cut off, a runner listens for
``timeout`` again before it starts anything (`ready`).  A runner with our name stops us only if
it is real: with a key, its MAC says so; without, its run must be
recorded in the store (`_registry`), which only runner users can write.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import anyio.abc
from distkv.actor import BrokenState, CompleteState, DetachedState, PartialState
from distkv.exceptions import ServerError
from moat.util import Path

from ._connwatch import GONE
from ._echolag import EchoLag, settle_time
from ._groupauth import Channel, GroupKeys, new_instance
from ._groupsend import GroupSender
from ._members import GroupMembers, Member, Roster
from ._namesake import NameClash, Namesakes
from ._outbox import MSG_TYPES, MsgType
from ._registry import Record
from ._wire import Message

logger = logging.getLogger(__name__)

__all__ = ["Group", "NameClash"]


class Group:
    """Heartbeat membership of one runner group.

    ``await tg.start(group.run)`` sends this node's heartbeats and hears
    the others' until cancelled (or the server is gone: then ``on_lost``);
    meanwhile `live` (who is there, with weights), `connected` (our own
    heartbeats come back), `ready`, `state_event` and `changes` describe
    the group, and ``on_change`` is called when they change.  `send_claim`
    sends the claim protocol's messages; `leave` says goodbye.  Raises
    ValueError if ``timeout`` is less than twice ``ping``.

    Args:
      client: the DistKV client
      topic: message topic of the group (a tuple of strings)
      name: this node's name
      weight: this node's share of any-node jobs (0: none)
      ping: seconds between heartbeats
      timeout: seconds of silence after which a node is gone
      on_change: called (sync) after the live set or connectivity changed
      load: callable returning this node's number of running jobs
      on_claim: called (sync) as ``on_claim(msg_type, job, node)`` for the
        claim protocol's messages of other nodes (`MsgType`: "claim" or
        "held"); None: they are ignored
      on_lost: called (sync) with the exception when the connection to the
        server is gone; `run` then returns
      keys: the group key(s) (`GroupKeys`); None or no key: unauthenticated
      records: where the group's runner records live (`_registry.records_base`);
        None: no record is written (and, without a key, no namesake is believed)
      record: what this runner's record says besides who it is (``trusted_keys``)
      tags: this node's tags (``relay``, ``room=kitchen``), sent with every
        heartbeat; the others place jobs that require or prefer tags by them
    """

    def __init__(
        self,
        client: Any,
        topic: Iterable[str],
        name: str,
        *,
        weight: float = 1.0,
        ping: float = 0.5,
        timeout: float = 2.0,
        on_change: Callable[[], None] | None = None,
        load: Callable[[], int] | None = None,
        on_claim: Callable[[MsgType, str, str], None] | None = None,
        on_lost: Callable[[BaseException], None] | None = None,
        keys: GroupKeys | None = None,
        records: Path | None = None,
        record: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        if timeout < 2 * ping:
            raise ValueError(f"timeout ({timeout}) must be at least twice ping ({ping})")
        self.client = client
        self.topic = tuple(topic)
        self.name = name
        self.weight = float(weight)
        self.tags = tuple(tags)
        self.ping = float(ping)
        self.timeout = float(timeout)
        self.on_change: Callable[[], None] = on_change or (lambda: None)
        self.load: Callable[[], int] = load or (lambda: 0)
        self.on_claim: Callable[[MsgType, str, str], None] = on_claim or (lambda msg_type, job, node: None)
        self.on_lost: Callable[[BaseException], None] = on_lost or (lambda exc: None)
        self.roster = Roster()  # the others
        self._echo: float | None = None  # when we sent the newest of our heartbeats that came back (monotonic)
        self.lag = EchoLag(4 * self.timeout)  # their round trips lately
        self._start: float | None = None
        self._mon_scope: anyio.CancelScope | None = None  # the cancel scope of the current group subscription
        self._subscribed: float | None = None  # monotonic time of the last (re)subscription
        self._live = frozenset([name])
        self._connected = False
        self._connected_since: float | None = None  # monotonic: since when our heartbeats come back
        self._stopping = False  # `leave` was called
        self._was_ready = False
        self.sender = GroupSender(self)
        #: the last change of the live members (an ``_info`` event)
        self.changes = GroupMembers(self._live)
        self.instance = new_instance()  # tells our echo from a namesake, and this run from earlier ones
        self.since = time.time()  # our clock: for display and records; nothing compares it (see _namesake)
        self.born = time.monotonic()  # what our age (heartbeat "u") counts from
        self.keys = keys if keys is not None else GroupKeys()
        self.channel = Channel(self.topic, name, self.instance, self.keys, self.timeout)
        #: this run's record in the store (`_registry`), or None
        self.record: Record | None = None
        if records is not None:
            info = {"since": self.since, "auth": "none", "keys": [], **(record or {})}
            if self.keys.keyed:
                info.update(auth="hmac-sha256", keys=self.keys.key_ids)
            self.record = Record(client, records, name, self.instance, info)
        self._tg: anyio.abc.TaskGroup | None = None
        #: why we do not take part (see `suspend`), or None
        self.suspended: str | None = None
        #: other runs that use our name (a mistake, or a forgery)
        self.namesakes = Namesakes(self, self.record)

    # --- state ---

    @property
    def ready(self) -> bool:
        """True once we have listened for ``timeout`` seconds since we
        started and since we were last cut off, so the live set is complete
        (before that, a node we have not heard yet, or whose heartbeats do
        not acknowledge us yet, is not necessarily gone)."""
        now = time.monotonic()
        return (
            self._start is not None
            and now - self._start >= self.timeout
            and self._connected_since is not None
            and now - self._connected_since >= self.timeout
        )

    @property
    def spawn(self) -> Callable[..., None] | None:
        """Start a task in the group's task group (None until `run` runs)."""
        return None if self._tg is None else self._tg.start_soon

    @property
    def authenticated(self) -> bool:
        """Does the group use a key (`GroupKeys`)?  Without one, anybody who
        can reach a DistKV server or the MQTT broker can speak in it."""
        return self.keys.keyed

    @property
    def dropped(self) -> dict[str, int]:
        """Messages not believed since the start, by reason (``malformed``,
        ``bad-mac``, ``no-mac``, ``unknown-key``, ``replay``, ``not-member``,
        ``namesake``)."""
        return dict(self.channel.dropped)

    @property
    def connected(self) -> bool:
        """Our own heartbeats come back (we can reach the group): one sent
        less than 0.75 timeout ago has come back.  Judged by when it was
        *sent*, so that after this process stalls (sync code blocking the
        event loop) it counts as cut off until a heartbeat sent after the
        stall returns, behind every message that queued up meanwhile."""
        if self.suspended is not None:
            return False
        return self._echo is not None and time.monotonic() - self._echo < self.timeout * 0.75

    def suspend(self, reason: str | None) -> None:
        """Our store writes are not confirmed (``reason``): send no
        heartbeats and count as cut off (our shared jobs stop; the others
        take them over), until called with None."""
        if (reason is None) != (self.suspended is None):
            logger.warning("%s: %s", self.name, reason or "store writes confirmed again: rejoining the group")
        self.suspended = reason
        self.on_change()

    def live(self) -> dict[str, float]:
        """{name: weight} of the live members, this node included."""
        res = {n: m.weight for n, m in self.roster.of(self._live).items()}
        res[self.name] = 0.0 if self._stopping else self.weight
        return res

    def live_tags(self) -> dict[str, frozenset[str]]:
        """{name: tags} of the live members, this node included."""
        res = {n: m.tags for n, m in self.roster.of(self._live).items()}
        res[self.name] = frozenset(self.tags)
        return res

    def is_live(self, name: str) -> bool:
        """Is ``name`` a live member (this node always is)?"""
        return name == self.name or name in self._live

    def state_event(self) -> Any:
        """This node's view of the group as a DistKV actor state event
        (`BrokenState`: cut off, `DetachedState`: alone, `PartialState`:
        some known members missing, `CompleteState`: all there)."""
        live = set(self._live)
        if not self._connected:
            return BrokenState(sorted(live))
        if live == {self.name}:
            return DetachedState(sorted(live))
        if self.roster.known - live:
            return PartialState(sorted(live))
        return CompleteState(sorted(live))

    # --- running ---

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Send and receive heartbeats until cancelled.

        If the server drops our subscription (it does when we fall more than
        100 messages behind) or the stream breaks, we subscribe again; the
        gap looks like a short disconnection.
        """
        if self.record is not None:
            with anyio.move_on_after(self.timeout):
                await self.record.write()
        self._start = time.monotonic()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.sender.run)
            tg.start_soon(self._expirer)
            started = False
            while True:
                try:
                    with anyio.CancelScope() as self._mon_scope:
                        async with self.client.msg_monitor(self.topic, raw=True) as mon:
                            self._subscribed = time.monotonic()
                            if not started:
                                task_status.started()
                                started = True
                            async for msg in mon:
                                self._receive(msg)
                    if self._mon_scope.cancel_called:
                        logger.warning("%s: own heartbeats stopped coming back; subscribing again", self.name)
                except ServerError as exc:  # e.g. dropped for falling behind
                    logger.warning("%s: group channel broke (%r); subscribing again", self.name, exc)
                    await anyio.sleep(0.1)
                except GONE as exc:  # the connection to the server is gone
                    logger.error("%s: lost the DistKV server: %r", self.name, exc)
                    self._connected = False
                    self._echo = None
                    tg.cancel_scope.cancel()
                    self.on_lost(exc)
                    return

    async def leave(self) -> None:
        """Tell the group that we stop (the others take over at once)."""
        self._stopping = True
        await self.sender.leave()

    @property
    def stopping(self) -> bool:
        """`leave` was called: our heartbeats say weight 0 from then on."""
        return self._stopping

    def claim_settle(self, base: float) -> float:
        """How long a claim waits for competing ones: ``base``, or longer
        while the channel is slow (`_echolag.settle_time`)."""
        return settle_time(base, self.lag.longest(time.monotonic(), self.ping), self.timeout)

    def send_claim(self, msg_type: MsgType, job: str) -> None:
        """Queue ``{msg_type: [job, ...]}`` ("claim": I want to run it;
        "held": I run it) for the group (`ClaimOutbox`: batched)."""
        self.sender.claim(msg_type, job)

    async def confirm_write(self) -> None:
        """Write something small (our runner record) and return once the
        server has confirmed it; raises what the write raises."""
        if self.record is not None:
            await self.record.confirm()

    def _receive(self, msg: Any) -> None:
        """One message from the group channel, as DistKV's monitor gives it
        (raw: we unpack it, see `_wire.unpack`)."""
        try:
            checked = self.channel.receive(msg)
            if checked is not None:
                self._heard(checked)
        except Exception as exc:  # nothing that arrives may stop a runner
            logger.exception("%s: a group message broke its handling", self.name)
            self.channel.drop("internal", repr(exc)[:100], None)

    def _heard(self, msg: Message) -> None:
        """A checked message (see the module doc for what is believed)."""
        now = time.monotonic()
        node = msg.node
        if node == self.name:
            if msg.instance == self.instance:
                if msg.kind == "hb":
                    self._echo = max(self._echo or msg.sent, min(msg.sent, now))
                    self.lag.heard(msg.sent, now)
                    self._update()
                return
            if msg.kind == "hb" and self.channel.fresh(msg):  # else: an old run of ours, replayed
                self.namesakes.heard(msg)
            return
        # a run we heard a heartbeat of lately (fresh or not: a runner that
        # rejoins must be answered "held" before it counts as live again)
        heard = self.roster.hears(node, msg.instance, now, self.timeout)
        if msg.kind == "leave":
            if heard:
                self.roster.left(node)
                self._update()
            return
        if msg.kind in MSG_TYPES:
            if not heard:
                self.channel.drop("not-member", f"{msg.kind} of {node}, whose heartbeats we do not hear", None)
                return
            for job in msg.jobs:
                self.on_claim(msg.kind, job, node)
            return
        self.roster.heard_run(node, msg.instance, now)
        if not self.channel.fresh(msg):
            return  # not yet (it has not heard us), or a replay of an old heartbeat
        tags = frozenset(msg.tags)
        old = self.roster.heard(node, Member(now, msg.weight, msg.load, msg.instance, tags))
        if node not in self._live:
            self._update()
        elif old is not None and old.tags != tags:  # a new run of it, with other tags
            self.on_change()

    async def _expirer(self) -> None:
        cleaned = False
        while True:
            await anyio.sleep(self.ping / 2)
            self._update()
            self._check_subscription()
            self.channel.log_drops()
            if not cleaned and self._start is not None and time.monotonic() - self._start > 3 * self.timeout:
                cleaned = True
                if self._tg is not None:
                    self._tg.start_soon(self.namesakes.forget_old_runs)

    def _check_subscription(self) -> None:
        """Subscribe again when our own heartbeats have not come back for
        twice the timeout: after the MQTT broker restarts, DistKV 0.65's
        server reconnects to it with a clean session, so the subscription
        behind our monitor is gone while the connection looks fine; a new
        ``msg_monitor`` subscribes afresh."""
        now = time.monotonic()
        heard = max(self._echo or self._start or 0.0, self._subscribed or 0.0)
        if self._mon_scope is not None and now - heard > 2 * self.timeout:
            self._subscribed = now
            self._mon_scope.cancel()

    def _update(self) -> None:
        now = time.monotonic()
        heard = self.roster.within(now, self.timeout)
        heard.add(self.name)
        connected = self.connected
        if not connected:
            self._connected_since = None
        elif self._connected_since is None:
            self._connected_since = now
        live = frozenset(heard)
        ready = self.ready
        if live != self._live or connected != self._connected or ready != self._was_ready:
            self._was_ready = ready
            old = self._live
            self._live = live
            self._connected = connected
            logger.debug("%s: group %s now %s (connected: %s)", self.name, self.topic, sorted(live), connected)
            self.changes = GroupMembers(live, live - old, old - live)
            self.on_change()
