"""What "the server is not there" looks like, as one exception type."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from distkv.exceptions import ClientConnectionError, ServerClosedError, ServerConnectionError

from distkv_ext.codekit.core.errors import ServerUnreachable

__all__ = ["CONN_ERRORS", "server_errors"]

#: The exceptions that mean: the connection to the DistKV server is
#: refused, broken or closed.
CONN_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ServerClosedError,
    ServerConnectionError,
    ClientConnectionError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


@asynccontextmanager
async def server_errors() -> AsyncIterator[None]:
    """Map connection failures (`CONN_ERRORS`) to `ServerUnreachable`
    (exit status 5); other exceptions pass unchanged."""
    try:
        yield
    except CONN_ERRORS as exc:
        raise ServerUnreachable(f"cannot talk to the DistKV server: {exc or type(exc).__name__}") from exc
