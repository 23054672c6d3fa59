"""Runner records: each running member of a group says who it is, in the store.

A runner of an any-node or all-node group writes a record at
``.distkv state _runner KIND GROUP NODE RUN`` (below DistKV's
``runner.state``, where the README's ACLs let runner users write, and
nobody else) when it starts, and deletes it when it stops.  It says how
the runner speaks in its group (with a group key, which one, or
unauthenticated) and which keys its code must be signed with, and its tags, so that
``run list`` and ``run why`` can say so, and it lets a runner tell a
real namesake from a forged one when the group has no key: a runner
with our name counts only if its run is recorded here, which only a
DistKV user that may write runner state can do.

Records of runs that ended without stopping (kill -9) are deleted by the
next run of that name once it has not heard them for a while.
"""

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

from distkv.exceptions import DistKVError
from moat.util import Path

from distkv_ext.codekit.store.entries import list_entries

logger = logging.getLogger(__name__)

__all__ = ["RECORDS", "records_base", "Record", "group_records", "auth_summary"]

#: The element below ``runner.state`` under which runner records live.
RECORDS = "_runner"


def records_base(state_prefix: Any, subpath: tuple[Any, ...]) -> Path:
    """Where the records of the group at ``subpath`` (``("any", GROUP)``)
    live: ``STATE + _runner + subpath``."""
    return Path.build(state_prefix) + (RECORDS,) + tuple(subpath)


class Record:
    """This runner's record (see the module doc).

    ``base``: `records_base` of its group; ``value``: what it says (node,
    run, since, auth, key ids, trusted key ids)."""

    def __init__(self, client: Any, base: Path, node: str, instance: str, value: Mapping[str, Any]) -> None:
        self.client = client
        self.base = base
        self.node = node
        self.instance = instance
        self.value = {"node": node, "run": instance, "host": socket.gethostname(), "pid": os.getpid(), **value}

    @property
    def path(self) -> Path:
        """This run's record."""
        return self.base + (self.node, self.instance)

    async def write(self) -> None:
        """Store the record (a failure is logged: the runner works without)."""
        try:
            await self.client.set(self.path, value=self.value)
        except (DistKVError, OSError) as exc:
            logger.warning("%s: could not write the runner record %s: %r", self.node, self.path, exc)

    async def confirm(self) -> None:
        """Store the record again; raises what the write raises (a probe:
        are our writes confirmed?)."""
        await self.client.set(self.path, value=self.value)

    async def delete(self) -> None:
        """Delete the record (on a clean stop)."""
        try:
            await self.client.delete(self.path)
        except (DistKVError, OSError) as exc:
            logger.debug("could not delete the runner record %s: %r", self.path, exc)

    async def has_run(self, node: str, instance: str) -> bool:
        """Is the run ``instance`` of ``node`` recorded?"""
        return await self.of_run(node, instance) is not None

    async def of_run(self, node: str, instance: str) -> dict[str, Any] | None:
        """The record of the run ``instance`` of ``node`` (host, pid,
        since, ...), None if there is none (or it cannot be read)."""
        try:
            res = await self.client.get(self.base + (node, instance))
        except (DistKVError, OSError) as exc:
            logger.debug("could not read the runner record of %s/%s: %r", node, instance, exc)
            return None
        v = res.get("value") if hasattr(res, "get") else None
        return dict(v) if isinstance(v, dict) and v.get("run") == instance and v.get("node") == node else None

    async def namesakes(self) -> list[str]:
        """The other recorded runs of our name."""
        res = []
        try:
            async for p, v in list_entries(self.client, self.base + (self.node,), max_depth=1):
                if len(p) == 1 and p[0] != self.instance and isinstance(v, dict):
                    res.append(str(p[0]))
        except (DistKVError, OSError) as exc:
            logger.debug("could not list the runner records of %s: %r", self.node, exc)
        return res

    async def forget(self, instance: str) -> None:
        """Delete the record of an earlier run of our name."""
        try:
            await self.client.delete(self.base + (self.node, instance))
        except (DistKVError, OSError) as exc:
            logger.debug("could not delete an old runner record of %s: %r", self.node, exc)


async def group_records(client: Any, state_prefix: Any, subpath: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The records of the runners of the group at ``subpath`` (a list of
    their values, by node)."""
    res = []
    async for p, v in list_entries(client, records_base(state_prefix, subpath)):
        if len(p) == 2 and isinstance(v, dict):
            res.append(dict(v))
    res.sort(key=lambda v: (str(v.get("node")), str(v.get("run"))))
    return res


def auth_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """How a group speaks, from its runners' records: ``{"auth":
    "authenticated" | "unauthenticated" | "mixed" | "unknown", "unauthenticated":
    [nodes without a key], "keys": [key ids], "trusted_keys": [key ids],
    "unsigned_ok": [nodes that run unsigned code]}``."""
    none = sorted({str(r.get("node")) for r in records if r.get("auth") == "none"})
    keyed = [r for r in records if r.get("auth") not in (None, "none")]
    keys = sorted({str(k) for r in keyed for k in (r.get("keys") or ())})
    trusted = sorted({str(k) for r in records for k in (r.get("trusted_keys") or ())})
    unsigned = sorted({str(r.get("node")) for r in records if not r.get("trusted_keys")})
    if not records:
        auth = "unknown"
    elif none and keyed:
        auth = "mixed"
    elif none:
        auth = "unauthenticated"
    else:
        auth = "authenticated"
    return {"auth": auth, "unauthenticated": none, "keys": keys, "trusted_keys": trusted, "unsigned_ok": unsigned}
