"""Noticing that the DistKV server is gone, for runners without a group.

A group's heartbeat stream tells its runner that the server died; a
single-node runner has no group, so `watch_connection` watches a quiet
channel of its own the same way, so that a single-node runner does not
keep its jobs running cut off from the store forever.
"""

import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
from distkv.exceptions import ServerClosedError, ServerConnectionError, ServerError

logger = logging.getLogger(__name__)

__all__ = ["watch_connection", "GONE"]

#: The exceptions that mean: the connection to the server is gone.
GONE = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ServerClosedError,
    ServerConnectionError,
    OSError,
)


async def watch_connection(
    client: Any,
    topic: tuple[str, ...],
    on_lost: Callable[[BaseException], None],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Call ``on_lost(exc)`` when the connection to the server is gone.

    For runners without a group (single-node runners): a group's heartbeat
    stream tells its runner that the server died; this watches a quiet
    channel of its own the same way, so that a single-node runner does not
    keep its jobs running cut off from the store forever.
    """
    started = False
    while True:
        try:
            async with client.msg_monitor(topic, raw=True) as mon:  # raw: anybody's garbage must not end it
                if not started:
                    task_status.started()
                    started = True
                async for _ in mon:
                    pass
            exc: BaseException = ServerClosedError("the server ended the connection")
        except ServerError as e:  # the subscription broke, not the connection
            logger.warning("connection watch broke (%r); subscribing again", e)
            await anyio.sleep(0.1)
            continue
        except GONE as e:
            exc = e
        break
    logger.error("lost the DistKV server: %r", exc)
    on_lost(exc)
