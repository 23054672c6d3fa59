"""The claim protocol's outgoing messages of one runner, batched: a
thousand jobs that come due in one scan of the scheduler cost a few group
messages, not a thousand (`ClaimOutbox`; the protocol: `_lifecycle`)."""

from collections.abc import Awaitable, Callable
from typing import Literal

import anyio

from ._wire import chunks

__all__ = ["ClaimOutbox", "MsgType", "MSG_TYPES", "GATHER"]

#: The claim protocol's messages on the group channel: "claim" (I want to
#: run these jobs) and "held" (I run them).  On the wire: see `_wire`.
MsgType = Literal["claim", "held"]
MSG_TYPES: tuple[MsgType, ...] = ("claim", "held")
#: Seconds a queued message waits for others of the same scan.
GATHER = 0.005


class ClaimOutbox:
    """Job names queued per message type (`add`) until `run` sends them,
    sorted, in batches that `_wire.chunks` bounds, with
    ``send(msg_type, jobs)``."""

    def __init__(self) -> None:
        self.pending: dict[MsgType, set[str]] = {}
        self._queued = anyio.Event()

    def add(self, msg_type: MsgType, job: str) -> None:
        """Queue ``job`` for the next ``msg_type`` message."""
        self.pending.setdefault(msg_type, set()).add(job)
        self._queued.set()

    async def run(self, send: Callable[[MsgType, tuple[str, ...]], Awaitable[None]]) -> None:
        """Send what is queued, `GATHER` seconds after the first of it
        came, until cancelled."""
        while True:
            await self._queued.wait()
            await anyio.sleep(GATHER)  # gather what this scan wants to claim
            self._queued = anyio.Event()
            box, self.pending = self.pending, {}
            for msg_type, jobs in box.items():
                for batch in chunks(sorted(jobs)):
                    await send(msg_type, batch)
