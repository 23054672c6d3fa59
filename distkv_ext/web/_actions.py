"""What the status page can do (with ``--allow-actions`` and the token).

Each action is an entry of `ACTIONS`: its name (the last part of its
URL, ``POST /api/errors/ack``), what it acts on ("error" or "job"), a
label for its button, and an async function that does it through
DistKV's client API.

Errors (DistKV's error tree, ``.distkv error NODE TOCK``):

* **ack**: acknowledge: mark the error resolved (``resolved``: the time),
  as ``distkv client error resolve`` does.  It is no longer "open"; when
  the job fails again its runner opens it again.
* **delete**: delete the record and its per-node details.

Jobs (``POST /api/jobs/NAME`` with the job's k, g, p (and n) as on
its page's URL; the job's page shows their buttons):

* **trigger**: one run now, as ``distkv client run trigger`` (refused,
  400, while it runs);
* **pause**: start no new run until resumed, as ``run pause`` (recorded
  as paused by "status page on HOST");
* **resume**: lift its pause and its quarantine, as ``run resume``.

Another job action: an `Action` with kind "job" whose function takes
(client, `JobRef`, prefixes).
"""

import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from moat.util import P, Path

from distkv_ext.codekit.core.errors import Conflict, InputRefused, NotFound
from distkv_ext.codekit.store.conn import server_errors
from distkv_ext.run import pause_job, resume_job, trigger_job, unpause_job

__all__ = [
    "Action",
    "ACTIONS",
    "acknowledge_error",
    "delete_error",
    "error_path",
    "trigger_action",
    "pause_action",
    "resume_action",
]


@dataclasses.dataclass(frozen=True)
class Action:
    """One thing the page can do; see the module doc."""

    name: str
    kind: str  # "error" or "job"
    label: str
    run: Callable[[Any, Any, dict[str, Path]], Awaitable[str]]
    confirm: str | None = None  # ask the browser before doing it


def error_path(errors_prefix: Path, err_id: str) -> Path:
    """The store path of the error ``err_id`` (``NODE.TOCK`` as the page
    shows it); `InputRefused` if it names no error record."""
    try:
        p = P(err_id)
    except Exception:
        raise InputRefused(f"not an error id: {err_id!r}") from None
    if len(p) != 2:
        raise InputRefused(f"not an error id: {err_id!r}")
    return errors_prefix + p


async def acknowledge_error(client: Any, err_id: Any, prefixes: dict[str, Path]) -> str:
    """Mark the error ``err_id`` resolved; `NotFound` if there is none,
    `Conflict` if it changed meanwhile."""
    path = error_path(prefixes["errors"], str(err_id))
    async with server_errors():
        res = await client.get(path, nchain=2)
        if not isinstance(res.get("value"), dict):
            raise NotFound("error", path, f"no error {err_id}")
        value = dict(res.value)
        value["resolved"] = time.time()
        try:
            await client.set(path, value=value, chain=res.get("chain"))
        except Exception as exc:
            if "chain" in repr(exc).lower() or "is new" in repr(exc):
                raise Conflict(f"error {err_id} changed meanwhile: try again") from None
            raise
    return f"acknowledged error {err_id}"


async def delete_error(client: Any, err_id: Any, prefixes: dict[str, Path]) -> str:
    """Delete the error ``err_id`` and its details; `NotFound` if there is none."""
    path = error_path(prefixes["errors"], str(err_id))
    async with server_errors():
        res = await client.get(path)
        if "value" not in res:
            raise NotFound("error", path, f"no error {err_id}")
        async for r in client.get_tree(path, min_depth=1, max_depth=1):
            await client.delete(path + r.path)
        await client.delete(path)
    return f"deleted error {err_id}"


def _job_name(ref: Any) -> str:
    return ".".join(str(x) for x in ref.path)


def _by() -> str:
    return f"status page on {socket.gethostname()}"


async def trigger_action(client: Any, ref: Any, prefixes: dict[str, Path]) -> str:
    """Run the job ``ref`` once now (`distkv_ext.run.trigger_job`)."""
    await trigger_job(
        client,
        ref.kind,
        ref.group,
        ref.path,
        node=ref.node,
        by=_by(),
        prefix=prefixes["run"],
        state_prefix=prefixes["state"],
    )
    return f"triggered job {_job_name(ref)}"


async def pause_action(client: Any, ref: Any, prefixes: dict[str, Path]) -> str:
    """Pause the job ``ref`` (`distkv_ext.run.pause_job`)."""
    done = await pause_job(
        client,
        ref.kind,
        ref.group,
        ref.path,
        node=ref.node,
        by=_by(),
        prefix=prefixes["run"],
        pause_prefix=prefixes["pause"],
    )
    return f"{'paused' if done else 'already paused'}: job {_job_name(ref)}"


async def resume_action(client: Any, ref: Any, prefixes: dict[str, Path]) -> str:
    """Lift the pause and the quarantine of the job ``ref``
    (`distkv_ext.run.unpause_job`, `distkv_ext.run.resume_job`)."""
    paused = await unpause_job(
        client, ref.kind, ref.group, ref.path, node=ref.node, prefix=prefixes["run"], pause_prefix=prefixes["pause"]
    )
    quarantined = await resume_job(
        client, ref.kind, ref.group, ref.path, node=ref.node, prefix=prefixes["run"], state_prefix=prefixes["state"]
    )
    done = "resumed" if paused["unpaused"] or any(quarantined.values()) else "not paused or quarantined"
    still = "; its group stays paused" if paused["group_paused"] else ""
    return f"{done}: job {_job_name(ref)}{still}"


#: name -> `Action`: what the page offers (see the module doc).
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("ack", "error", "Acknowledge", acknowledge_error),
        Action("delete", "error", "Delete", delete_error, confirm="Delete this error record?"),
        Action("trigger", "job", "Run once now", trigger_action, confirm="Run this job once now?"),
        Action("pause", "job", "Pause", pause_action),
        Action("resume", "job", "Resume", resume_action),
    )
}
