"""The one error boundary of every distkv-code command.

Library exceptions carry their exit status (`CodeError.exit_status`);
here they become a click exception, which click prints as one line,
``Error: ...``, on stderr and exits with that status.  A traceback is
printed only with ``distkv -v ...`` (or ``-D``/``--debug``).

A closed pipe on standard output (``distkv client code list | head -1``,
``run logs -f | head -3``) ends the command quietly with exit status
141, as a shell reports a command killed by SIGPIPE (128 + 13): the
reader has what it wanted; nothing is wrong with the server.
"""

import errno
import functools
import os
import select
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import asyncclick as click
from distkv.exceptions import ClientError, ServerError

from distkv_ext.codekit.core.errors import CodeError, ServerUnreachable
from distkv_ext.codekit.core.status import ExitStatus
from distkv_ext.codekit.store.conn import CONN_ERRORS

__all__ = ["CliError", "boundary", "get_client", "debugging", "PIPE_CLOSED"]

#: Exit status when standard output's reader went away: 128 + SIGPIPE, as
#: the shell reports a command that SIGPIPE killed.
PIPE_CLOSED = int(ExitStatus.PIPE_CLOSED)


class CliError(click.ClickException):
    """A failure with a given exit status; printed as ``Error: message``."""

    def __init__(self, message, exit_status=ExitStatus.FAILURE):
        super().__init__(message)
        self.exit_code = int(exit_status)


class Finished(click.exceptions.Exit):
    """Leave with this exit status, printing nothing (e.g. ``diff``: 1)."""


def debugging(obj):
    """True if the user asked for tracebacks (``-v`` or ``-D``)."""
    try:
        return (obj.debug or 0) > 1 or bool(obj.DEBUG)
    except AttributeError:
        return False


def get_client(obj: Any) -> Any:
    """The connected DistKV client, or `ServerUnreachable`."""
    client = obj.client
    try:
        _ = client.name  # a NullObj from a failed connect raises here
    except OSError as exc:
        where = getattr(obj, "code_server", None)
        where = f" at {where}" if where else ""
        raise ServerUnreachable(f"cannot reach the DistKV server{where}: {_describe(exc)}") from exc
    return client


def _describe(exc):
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        msg = exc.strerror
    return msg


_RIGHTS = {
    "r": "read",
    "w": "write",
    "d": "delete",
    "c": "create",
    "n": "new path elements",
    "x": "access",
    "e": "enumerate",
}


def _refused(text):
    """DistKV's refusals in words: an ACL error (``ACLError(<AclEntry ...>,
    'w')``) or an administrator's command (`upstream.distkv_admin`)."""
    if text.startswith("ACLError(") and text.endswith("')") and len(text) > 4:
        flag = text[-3]
        return f"permission denied: this DistKV user's ACL lacks '{flag}' ({_RIGHTS.get(flag, '?')}) there"
    if text.startswith("AdminRequired("):
        return f"permission denied: {text[len('AdminRequired(') + 1 : -2]}"
    return None


def _leaves(exc):
    """The exceptions in trio's MultiError / an ExceptionGroup (nested
    ones too); ``[exc]`` for one that is no group."""
    subs = getattr(exc, "exceptions", None)
    return [leaf for sub in subs for leaf in _leaves(sub)] if subs else [exc]


def _flatten(exc):
    """A group with one leaf: that leaf; otherwise ``exc``."""
    leaves = _leaves(exc)
    return leaves[0] if len(leaves) == 1 else exc


def _one_error(exc):
    """`_flatten`, and for a group of errors that all carry one exit status
    (concurrent tasks that noticed the same thing, such as a lost server):
    its first."""
    leaves = _leaves(exc)
    if len(leaves) == 1:
        return leaves[0]
    if all(isinstance(e, CodeError) for e in leaves) and len({e.exit_status for e in leaves}) == 1:
        return leaves[0]
    return exc


def _translate(exc):
    """Map an exception to a `CliError`, or None to re-raise it."""
    exc = _one_error(exc)
    if isinstance(exc, CodeError):
        return CliError(str(exc), exc.exit_status)
    if isinstance(exc, KeyboardInterrupt):
        return CliError("interrupted", ExitStatus.INTERRUPTED)
    if isinstance(exc, CONN_ERRORS):
        return CliError(f"cannot talk to the DistKV server: {_describe(exc)}", ExitStatus.SERVER)
    if isinstance(exc, (ServerError, ClientError)):
        return CliError(_refused(str(exc)) or f"DistKV: {type(exc).__name__}: {exc}", ExitStatus.FAILURE)
    return None


def _stdout_closed(exc):
    """Is ``exc`` a write to standard output whose reader has gone?  (A
    broken connection to the server is an anyio error, not EPIPE; and
    the check looks at standard output itself.)"""
    if not isinstance(exc, OSError) or exc.errno != errno.EPIPE:
        return False
    try:
        fd = sys.stdout.fileno()
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poll.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _quiet_exit():
    """Leave after the reader of standard output went away: nothing more
    goes there (not even Python's final flush), exit status 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return Finished(PIPE_CLOSED)


def _flush_stdout(obj):
    """Flush what the command printed, inside the boundary: a closed pipe
    shows now, not in Python's exit handler."""
    for stream in {id(s): s for s in (sys.stdout, getattr(obj, "stdout", None)) if s is not None}.values():
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass


_F = TypeVar("_F", bound=Callable[..., Any])


def boundary(fn: _F) -> _F:
    """Decorate a command callback: errors become one line and an exit status."""

    @functools.wraps(fn)
    async def wrapper(*a, **kw):
        ctx = click.get_current_context()
        try:
            res = await fn(*a, **kw)
            _flush_stdout(ctx.obj)
            return res
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BaseException as exc:
            flat = _flatten(exc)
            if _stdout_closed(flat):
                raise _quiet_exit() from None
            err = _translate(exc)
            if err is None:
                if isinstance(flat, Exception):
                    err = CliError(f"{type(flat).__name__}: {flat}", ExitStatus.FAILURE)
                else:
                    raise
            if debugging(ctx.obj):
                traceback.print_exception(exc, file=sys.stderr)
            raise err from None

    return wrapper  # type: ignore[return-value]  # same signature, as functools.wraps says
