"""Listening to a runner group without joining it: `GroupObserver`.

The status page (``distkv client run web``) shows who is in a group.  It
hears the group's channel as a runner does, through the same checks
(`_groupauth.Channel`: every field (`_wire`), with a group key the MAC,
no replays), but never sends anything: no heartbeats, no claims, no
"held" answers.  So the observer is invisible to the runners and cannot
change what they do.

Where a group's channel is authenticated (``runner.group_key``), the
observer needs the same key (the page runs with the runners'
configuration); without it every message is dropped (counted as
``no-mac``) and the page shows no members.  A silent observer cannot use
the runners' rule that a heartbeat counts only while it acknowledges one
of our own messages (it sends none): without a key, a forger that speaks
in the group can make the page show a member that is not there.  The
page only shows; it never acts on what it hears.
"""

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import anyio.abc
from distkv.exceptions import ServerError

from distkv_ext.codekit.core.errors import ServerUnreachable

from ._connwatch import GONE
from ._groupauth import Channel, GroupKeys, new_instance
from ._outbox import MSG_TYPES, MsgType
from ._wire import Message

logger = logging.getLogger(__name__)

__all__ = ["GroupHeard", "GroupObserver", "MemberSeen", "KEYLESS"]


#: the reasons a message is dropped that mean "we lack the group's key"
KEYLESS = ("no-mac", "bad-mac", "unknown-key")


@dataclasses.dataclass(frozen=True)
class GroupHeard:
    """What listening to one group found.

    live: the nodes heard within the timeout; complete: the whole timeout
    was listened to (or every node asked about was heard), so a node asked
    about and not in ``live`` is gone; deaf: the group speaks with a key we
    do not hold (its messages were dropped, nobody could be heard), so
    nothing can be said; listened: seconds spent; timeout: the silence
    after which a runner counts as gone; tags: {node: its tags} of the
    live nodes (from their heartbeats; a node without tags: empty).
    """

    live: frozenset[str]
    complete: bool
    deaf: bool
    listened: float
    timeout: float
    tags: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def gone(self, node: Any) -> bool:
        """Is ``node``'s runner certainly not running?"""
        return self.complete and not self.deaf and str(node) not in self.live

    @property
    def nobody(self) -> bool:
        """Is certainly no runner of the group running?"""
        return self.complete and not self.deaf and not self.live


@dataclasses.dataclass(frozen=True)
class MemberSeen:
    """A member of a group as an observer heard it.

    name: its node name; weight: its share of any-node jobs (from its
    heartbeats); load: how many jobs it said it runs; last_heard: when
    (Unix time) its last heartbeat arrived; live: heard within the group's
    timeout; tags: its tags (``run all --tag``), sorted.
    """

    name: str
    weight: float
    load: int
    last_heard: float
    live: bool
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class _Heard:
    instance: str
    seen: float  # monotonic
    weight: float
    load: int
    tags: tuple[str, ...] = ()


class GroupObserver:
    """Hears the channel ``topic`` of a runner group, read-only.

    ``await tg.start(observer.run)`` listens until cancelled; `members`
    lists who was heard.  ``timeout``: seconds of silence after which a
    member counts as gone (the group's ``runner.timeout``); ``keys``: the
    group's `GroupKeys` (None or no key: the group is unauthenticated).
    ``on_change()`` is called when the live members change;
    ``on_claim(msg_type, job, node)`` for each claim protocol message of a
    member ("claim": ``node`` wants ``job``; "held": it runs it).  Raises
    `ServerUnreachable` when the connection to the server is gone.
    """

    def __init__(
        self,
        client: Any,
        topic: Iterable[str],
        *,
        timeout: float = 2.0,
        keys: GroupKeys | None = None,
        on_change: Callable[[], None] | None = None,
        on_claim: Callable[[MsgType, str, str], None] | None = None,
    ) -> None:
        self.topic = tuple(topic)
        self.timeout = float(timeout)
        self._client = client
        self._on_change = on_change or (lambda: None)
        self._on_claim = on_claim or (lambda msg_type, job, node: None)
        # a name no runner has, and a run of its own: it never acknowledges
        # anything, so no runner ever counts it as a member
        self.channel = Channel(
            self.topic, f"observer.{os.urandom(6).hex()}", new_instance(), keys or GroupKeys(), self.timeout
        )
        self._members: dict[str, _Heard] = {}
        self._live: frozenset[str] = frozenset()
        self.heard = 0
        self._since: float | None = None  # monotonic: listening since
        self._complete = False  # listened a whole timeout (said once through on_change)

    @property
    def dropped(self) -> int:
        """Messages not believed since the start (malformed, no valid MAC,
        replayed, claims of non-members)."""
        return sum(self.channel.dropped.values())

    def hear(self, msg: Any) -> None:
        """Take one message of the channel (as ``msg_monitor(raw=True)``
        yields it): check it as the runners do, never answer.  Never raises."""
        self.heard += 1
        try:
            checked = self.channel.receive(msg)
            if checked is not None:
                self._heard(checked)
        except Exception as exc:  # whatever a message holds: we keep listening
            logger.debug("%s: message not understood: %r", self.topic, exc)
            self.channel.drop("internal", repr(exc)[:100], None)

    def _heard(self, msg: Message) -> None:
        now = time.monotonic()
        m = self._members.get(msg.node)
        if msg.kind == "leave":
            if m is not None and m.instance == msg.instance:
                del self._members[msg.node]
                self._update()
            return
        if msg.kind in MSG_TYPES:
            if m is None or m.instance != msg.instance or now - m.seen >= self.timeout:
                self.channel.drop("not-member", f"{msg.kind} of {msg.node}, whose heartbeats we do not hear", None)
                return
            for job in msg.jobs:
                self._on_claim(msg.kind, job, msg.node)
            return
        self._members[msg.node] = _Heard(msg.instance, now, msg.weight, msg.load, tuple(sorted(msg.tags)))
        if len(self._members) > 256:  # forged names, without a key: keep the newest
            for name, _ in sorted(self._members.items(), key=lambda kv: kv[1].seen)[:-256]:
                del self._members[name]
        self._update()

    def _update(self) -> None:
        now = time.monotonic()
        live = frozenset(n for n, m in self._members.items() if now - m.seen < self.timeout)
        if live != self._live:
            self._live = live
            self._on_change()

    def members(self) -> list[MemberSeen]:
        """Every member heard since we started (a member that said
        goodbye is dropped), sorted by name."""
        now, mono = time.time(), time.monotonic()
        return [
            MemberSeen(name, m.weight, m.load, now - (mono - m.seen), mono - m.seen < self.timeout, m.tags)
            for name, m in sorted(self._members.items())
        ]

    def heard_now(self) -> GroupHeard:
        """What has been heard so far, as `hear_groups` answers: who is live,
        and whether it listened a whole timeout (so an absent node is gone)."""
        listened = 0.0 if self._since is None else time.monotonic() - self._since
        seen = [m for m in self.members() if m.live]
        live = frozenset(m.name for m in seen)
        deaf = not live and any(self.channel.dropped.get(k, 0) for k in KEYLESS)
        tags = {m.name: frozenset(m.tags) for m in seen}
        return GroupHeard(live, listened >= self.timeout, deaf, listened, self.timeout, tags)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; subscribe again when the server drops
        the subscription (it does when we fall 100 messages behind)."""
        started = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._expire)
            while True:
                try:
                    async with self._client.msg_monitor(self.topic, raw=True) as mon:
                        if not started:
                            self._since = time.monotonic()
                            task_status.started()
                            started = True
                        async for msg in mon:
                            self.hear(msg)
                    raise ServerUnreachable("the DistKV server closed the connection")
                except ServerError as exc:
                    logger.warning("%s: group channel broke (%r); subscribing again", self.topic, exc)
                    await anyio.sleep(0.1)
                except GONE as exc:
                    raise ServerUnreachable(f"lost the connection to the DistKV server: {exc!r}") from exc

    async def _expire(self) -> None:
        while True:
            await anyio.sleep(self.timeout / 4)
            self._update()  # members not heard for `timeout` are gone: on_change
            if not self._complete and self._since is not None and time.monotonic() - self._since >= self.timeout:
                self._complete = True  # now an absent member is known to be gone
                self._on_change()
            self.channel.log_drops()
