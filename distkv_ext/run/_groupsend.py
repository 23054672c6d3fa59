"""What a `Group` sends on its channel: `GroupSender`.

Its heartbeats (every ``ping`` seconds, with what the others need to know
of this run: since when, its weight, its load, its tags, and the time it
was sent, which only this process compares), the claim protocol's
messages (batched: `ClaimOutbox`), and its goodbye.  Each send waits for
the server at most ``timeout`` seconds: a server that cannot pass it on
(its broker is gone) must not stop the heartbeats for good.
"""

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from ._outbox import ClaimOutbox, MsgType

if TYPE_CHECKING:  # (the group imports us)
    from ._group import Group

logger = logging.getLogger(__name__)

__all__ = ["GroupSender"]


class GroupSender:
    """The sending side of ``group`` (see the module doc)."""

    def __init__(self, group: "Group") -> None:
        self.group = group
        self.outbox = ClaimOutbox()

    async def run(self) -> None:
        """Send heartbeats and queued claims until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeats)
            tg.start_soon(self.outbox.run, self._send_claims)

    def claim(self, msg_type: MsgType, job: str) -> None:
        """Queue ``{msg_type: [job, ...]}`` for the group (batched)."""
        self.outbox.add(msg_type, job)

    async def leave(self) -> None:
        """Say goodbye (the others take over at once); at most 2 s, whatever happens."""
        g = self.group
        try:
            with anyio.move_on_after(2, shield=True):
                await g.client.msg_send(g.topic, g.channel.outgoing("leave"))
                if g.record is not None:
                    await g.record.delete()
        except Exception as exc:
            logger.debug("could not send leave: %r", exc)

    async def _send_claims(self, msg_type: MsgType, jobs: tuple[str, ...]) -> None:
        await self.send(self.group.channel.outgoing(msg_type, jobs=jobs), msg_type)

    async def _heartbeats(self) -> None:
        g = self.group
        while True:
            if g.suspended is not None:
                await anyio.sleep(g.ping)
                continue
            msg = g.channel.outgoing(
                "hb",
                since=g.since,
                age=time.monotonic() - g.born,
                weight=0.0 if g.stopping else g.weight,
                load=max(0, int(g.load())),
                sent=time.monotonic(),  # this process's clock: only we compare it
                tags=g.tags,
            )
            await self.send(msg, "heartbeat")
            await anyio.sleep(g.ping)

    async def send(self, msg: dict[str, Any], what: str) -> None:
        """Send ``msg`` to the group; a failure or a server that has not
        confirmed it within the group's ``timeout`` is logged."""
        g = self.group
        try:
            with anyio.fail_after(g.timeout):
                await g.client.msg_send(g.topic, msg)
        except TimeoutError:
            logger.warning("%s: %s not confirmed by the server within %s s", g.name, what, g.timeout)
        except Exception as exc:
            logger.warning("%s: %s not sent: %r", g.name, what, exc)
