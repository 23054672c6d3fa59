"""DistKV's error tree (``.distkv error``): one handler per client.

Every handler of ours (procedures, runners) and DistKV's own code use the
same `distkv.errors.ErrorRoot` of a client: ours is started as the very
service that DistKV's ``ErrorRoot.as_handler(client)`` starts, so whichever
comes first is the one both use, and a client watches the error tree
once (each watch costs the server events; DistKV's harness counts them).

Naming: DistKV names the records a handler writes by the client's name,
which is the host name unless configured.  Two processes on one host
(two runner daemons, or a daemon and a CLI call) would then write
records under one name, and DistKV's `ErrorRoot` dies on that ("This
cannot happen").  So when ours starts the handler it is named
``HOST.PID``; when the program started DistKV's own first (as DistKV's
tests do), that one, named by the client's name, is used.  Records are
looked up by subsystem and path, not by name, so an error recorded by
one process is still resolved by another.

Each name adds its own detail entry to every record it touches, so a
daemon's records must not be named by its PID: every restart would add
a set.  A daemon names its handler (`name_error_records`) by what stays
the same across restarts and differs between daemons that run at once
(a runner: host, node and group; a second runner of a node and group
refuses to start).
"""

import logging
import os
import re
import weakref
from typing import Any

from distkv.errors import ErrorRoot
from moat.util import Path

from .clientapi import Client
from .entries import list_entries

logger = logging.getLogger(__name__)

__all__ = ["error_root", "name_error_records", "service_name", "forget_dead_pids"]


def service_name(client: Client) -> str:
    """The name under which ``ErrorRoot.as_handler(client)`` of DistKV 0.65
    runs its handler (``distkv.obj.ClientRoot.as_handler``: ``_distkv``,
    the client's name, the ``CFG`` of the class)."""
    return str(Path("_distkv", client.name, ErrorRoot.CFG))


async def error_root(client: Client) -> Any:
    """The `distkv.errors.ErrorRoot` of ``client``: the one already running
    (ours, or DistKV's own from ``ErrorRoot.as_handler(client)``), else
    one started now (named ``HOST.PID``, loaded before it is returned),
    shared by every later call with the same client and by DistKV's
    ``ErrorRoot.as_handler(client)``.  Named as `name_error_records` said,
    if it was called for this client."""
    name = _NAMES.get(client) or f"{client.client_name}.{os.getpid()}"
    cfg = client._cfg[ErrorRoot.CFG]

    def make() -> Any:
        return client.mirror(cfg["prefix"], root_type=ErrorRoot, need_wait=True, cfg=cfg, name=name)

    return await client.unique_helper(service_name(client), factory=make)


_NAMES: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def name_error_records(client: Client, name: str) -> None:
    """Name the error records ``client``'s handler writes ``name`` (instead
    of ``HOST.PID``): call it before anything starts that handler.  For a
    daemon, so that restarts add no records (see the module doc)."""
    _NAMES[client] = str(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's: alive
        return True
    return True


async def forget_dead_pids(client: Client) -> int:
    """Delete the detail entries that processes of this host named
    ``HOST.PID`` (earlier versions named a daemon's records so, one set per
    start) left below error records, if that process is gone; return how
    many.  The records themselves stay: they are the errors of their
    paths, which any process resolves."""
    mine = re.compile(re.escape(str(client.client_name)) + r"\.([0-9]+)")
    prefix = Path.build(client._cfg[ErrorRoot.CFG]["prefix"])
    # listed first: a stop while deleting leaves no listing half read
    stale = [
        p
        async for p, _ in list_entries(client, prefix, max_depth=3)
        if len(p) == 3
        and (m := mine.fullmatch(str(p[2])))
        and int(m.group(1)) != os.getpid()
        and not _alive(int(m.group(1)))
    ]
    for p in stale:
        try:
            await client.delete(prefix + p)
        except Exception as exc:  # gone meanwhile
            logger.debug("could not delete %s: %r", prefix + p, exc)
    return len(stale)
