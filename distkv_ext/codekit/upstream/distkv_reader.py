"""DistKV 0.65.0's client drops its whole connection when its event loop
is busy for a second.

The client's reader task hands each reply of a streamed request (a watch,
a ``get_tree``) to the request's queue under ``anyio.fail_after(1)``, and
a ``TimeoutError`` there ends the reader ("Reader died"): every request
of the connection fails and every watch ends.  The timeout is meant for
a queue that nobody empties, but the queue's ``put`` yields to the
scheduler even when the queue has room, and it counts as late when the
loop comes back to the reader more than a second later: a runner busy
for a second with its own work (a thousand jobs starting, the
assignment of ten thousand) lost its server in the scale benchmark.

`apply` makes the reply queues take a message at once when they have
room (no yield, so no second can pass); only a queue that is really full
still waits, under DistKV's timeout as before.  A flow-controlled stream
(a server with ``buffer``) never fills its queue: the server sends no
more than the queue holds before the client's acknowledgement.

The reader also logs a warning, "Reader socket closed", when the client
itself closes the connection while the reader is handing on a reply
(the connection's ``finally`` clears ``_socket``): the normal end of a
command whose last request was still streaming.  A ``distkv client``
command that ended with its own one-line error printed that warning
above it, now and then.  `apply` drops exactly that record; a reader
that dies of anything else ("Reader died", "Reader closed in handler")
still warns.
"""

import logging

import anyio
import distkv.client as dclient
from moat.util.queue import DelayedRead, Queue

__all__ = ["apply", "OwnCloseFilter", "PACKAGE", "TARGET"]

PACKAGE = "distkv"
#: The release this was written for.
TARGET = "0.65.0"

_applied = False


class _Eager:
    """A mix-in: ``put`` without a yield when the queue has room."""

    async def put(self, x: object) -> None:
        try:
            self.put_nowait(x)  # type: ignore[attr-defined]
        except anyio.WouldBlock:
            await super().put(x)  # type: ignore[misc]


class EagerQueue(_Eager, Queue):
    """moat-util's `Queue`, taking a message at once when it has room."""


class EagerDelayedRead(_Eager, DelayedRead):
    """moat-util's flow-controlled `DelayedRead`, taking a message at once
    when it has room."""


class OwnCloseFilter(logging.Filter):
    """Drops DistKV's "Reader socket closed" warning (a close of our own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Reader socket closed"


def apply() -> None:
    """Give every new DistKV streamed request eager reply queues, and drop
    the reader's warning about a close of our own (idempotent)."""
    global _applied
    if _applied:
        return
    _applied = True
    logging.getLogger(dclient.__name__).addFilter(OwnCloseFilter())
    orig = dclient.StreamedRequest.__init__

    def __init__(self: dclient.StreamedRequest, *a: object, **kw: object) -> None:
        orig(self, *a, **kw)
        qr = self.qr
        if type(qr) is DelayedRead:
            qr.__class__ = EagerDelayedRead
        elif type(qr) is Queue:
            qr.__class__ = EagerQueue

    __init__.__wrapped__ = orig  # type: ignore[attr-defined]
    dclient.StreamedRequest.__init__ = __init__  # type: ignore[method-assign]
