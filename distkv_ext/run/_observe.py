"""Listening to a runner group without joining it: `GroupObserver`.

The status page (``distkv client run web``) shows who is in a group.  It
hears the group's channel as a runner does: every message goes through
the runners' own handling (`Group._heard`) into a `Group` that never
sends anything: no heartbeats, no claims, no "held" answers.  So the
observer is invisible to the runners and cannot change what they do.

Where a group's channel is authenticated (``runner.group_key``), the
observer must check each message as the runners do, with the same key:
the page runs with the runners' configuration.  A silent observer cannot
use a rule that needs answers to its own messages (a heartbeat that
acknowledges one of ours): what it shows it may show a little longer than
a runner would believe it, never act on.
"""

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.abc
from distkv.exceptions import ServerError

from distkv_ext.codekit.core.errors import ServerUnreachable

from ._group import _GONE, Group, MsgType

logger = logging.getLogger(__name__)

__all__ = ["GroupObserver", "MemberSeen"]


@dataclasses.dataclass(frozen=True)
class MemberSeen:
    """A member of a group as an observer heard it.

    name: its node name; weight: its share of any-node jobs (from its
    heartbeats); load: how many jobs it said it runs; last_heard: when
    (Unix time) its last message arrived; live: heard within the group's
    timeout.
    """

    name: str
    weight: float
    load: int
    last_heard: float
    live: bool


class GroupObserver:
    """Hears the channel ``topic`` of a runner group, read-only.

    ``await tg.start(observer.run)`` listens until cancelled; `members`
    lists who was heard.  ``timeout``: seconds of silence after which a
    member counts as gone (the group's ``runner.timeout``).
    ``on_change()`` is called when the live members change;
    ``on_claim(msg_type, job, node)`` for each claim protocol message
    ("claim": ``node`` wants ``job``; "held": it runs it).  Raises
    `ServerUnreachable` when the connection to the server is gone.
    """

    def __init__(
        self,
        client: Any,
        topic: Iterable[str],
        *,
        timeout: float = 2.0,
        on_change: Callable[[], None] | None = None,
        on_claim: Callable[[MsgType, str, str], None] | None = None,
    ) -> None:
        self.topic = tuple(topic)
        self._client = client
        # a name no runner has: the group never hears it, and its own
        # (nonexistent) echo never makes it count as a member
        name = f"observer.{os.urandom(6).hex()}"
        self.group = Group(
            client,
            self.topic,
            name,
            weight=0.0,
            ping=timeout / 2,
            timeout=timeout,
            on_change=on_change,
            on_claim=on_claim,
        )
        self.dropped = 0
        self.heard = 0

    def hear(self, msg: Any) -> None:
        """Take one message of the channel (as ``msg_monitor`` yields it):
        what the runners' `Group` would do with it, but never answer."""
        self.heard += 1
        data = msg.get("data") if hasattr(msg, "get") else None
        if not isinstance(data, dict) or not isinstance(data.get("node"), str):
            self.dropped += 1
            return
        try:
            self.group._heard(data)  # the runners' own handling of a message
        except Exception as exc:  # whatever a message holds: we keep listening
            logger.debug("%s: message not understood: %r", self.topic, exc)
            self.dropped += 1

    def members(self) -> list[MemberSeen]:
        """Every member heard since we started (a member that said
        goodbye is dropped), sorted by name."""
        now, mono = time.time(), time.monotonic()
        g = self.group
        res = []
        for name, m in sorted(g.members.items()):
            try:
                load = int(m.load)
            except (TypeError, ValueError):
                load = 0
            res.append(MemberSeen(name, m.weight, load, now - (mono - m.seen), mono - m.seen < g.timeout))
        return res

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; subscribe again when the server drops
        the subscription (it does when we fall 100 messages behind)."""
        started = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._expire)
            while True:
                try:
                    async with self._client.msg_monitor(self.topic) as mon:
                        if not started:
                            task_status.started()
                            started = True
                        async for msg in mon:
                            self.hear(msg)
                    raise ServerUnreachable("the DistKV server closed the connection")
                except ServerError as exc:
                    logger.warning("%s: group channel broke (%r); subscribing again", self.topic, exc)
                    await anyio.sleep(0.1)
                except _GONE as exc:
                    raise ServerUnreachable(f"lost the connection to the DistKV server: {exc!r}") from exc

    async def _expire(self) -> None:
        g = self.group
        while True:
            await anyio.sleep(g.ping / 2)
            g._update()  # members not heard for `timeout` are gone: on_change
