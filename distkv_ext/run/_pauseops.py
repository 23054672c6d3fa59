"""Pausing and resuming jobs (``run pause`` / ``run resume``), and
reading the pauses (``run why``, ``run list``).

A pause is a value of its own (`_layout.pause_path`), never a change of
the runner entry (the job's definition) or of its state (the runners'):
runners watch the pauses and start no new run of a paused job; a run in
progress goes on to its end.  See `_pause` for what a stored pause means.
"""

from collections.abc import Mapping
from typing import Any

from moat.util import Path

from distkv_ext.codekit.core.errors import NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.store.conn import server_errors
from distkv_ext.codekit.store.entries import delete_entry, get_entry, list_entries, write_entry

from ._layout import PAUSE_PREFIX, RUN_PREFIX, pause_path, runner_subpath
from ._pause import is_paused, pause_of, pause_value

__all__ = [
    "pause_job",
    "pause_group",
    "unpause_job",
    "unpause_group",
    "group_pauses",
    "all_pauses",
    "pauses_by_group",
    "job_pause",
]


def _group_words(kind: str, group: Any, node: Any) -> str:
    if kind == "single":
        return f"single-node group {group} of {node}"
    return f"{kind}-node group {group}"


async def _pause_at(client: Any, path: Path) -> tuple[Any, Any]:
    """(value, chain) at ``path``; value None when there is none."""
    async with server_errors():
        res = await client.get(path, nchain=2)
    return res.get("value", None), res.get("chain", None)


async def _set_pause(client: Any, path: Path, by: str | None, reason: str | None) -> bool:
    """Write a pause at ``path`` unless one is there; True if written."""
    value = pause_value(by, reason)  # InputRefused before any write
    old, chain = await _pause_at(client, path)
    if is_paused(old):
        return False
    await write_entry(client, path, Path(), value, chain=chain)
    return True


async def _lift(client: Any, path: Path) -> bool:
    """Delete the pause at ``path``, if any; True if there was one."""
    old, chain = await _pause_at(client, path)
    if not is_paused(old):
        return False
    await delete_entry(client, path, Path(), "pause", chain=chain)
    return True


async def pause_job(
    client: Any,
    kind: str,
    group: Any,
    path: Any,
    *,
    node: Any = None,
    reason: str | None = None,
    by: str | None = None,
    prefix: Path = RUN_PREFIX,
    pause_prefix: Path = PAUSE_PREFIX,
) -> bool:
    """Pause the job at ``path``: its runners start no new run of it until
    `unpause_job` (a run in progress goes on to its end; ``run trigger``
    still starts one run).  The pause records ``by`` (default: this
    USER@HOST), the time and ``reason`` (one line).  Returns False when
    it was paused already (that pause is kept as it is).  `NotFound`
    when there is no such job; `InputRefused` for a reason of more than
    one line."""
    path = as_path(path, "job")
    sub = Path.build(runner_subpath(kind, group, node))
    await get_entry(client, prefix + sub, path, "job")  # NotFound: no such job
    return await _set_pause(client, pause_path(pause_prefix, kind, group, node, path), by, reason)


async def _has_jobs(client: Any, base: Path) -> bool:
    # read to the end: the walk's nested generators cannot be closed early
    return any([isinstance(v, dict) and "code" in v async for _, v in list_entries(client, base)])


async def pause_group(
    client: Any,
    kind: str,
    group: Any,
    *,
    node: Any = None,
    reason: str | None = None,
    by: str | None = None,
    prefix: Path = RUN_PREFIX,
    pause_prefix: Path = PAUSE_PREFIX,
) -> bool:
    """Pause every job of a group (of one kind: ``kind``, and ``node`` for
    single-node groups), those added later too, with one value at the
    group's own pause path; as `pause_job` otherwise.  Jobs paused on
    their own stay so after `unpause_group`.  `NotFound` when the group
    has no job of that kind."""
    sub = Path.build(runner_subpath(kind, group, node))
    if not await _has_jobs(client, prefix + sub):
        raise NotFound("job", group, f"no jobs in {_group_words(kind, group, node)}")
    return await _set_pause(client, pause_path(pause_prefix, kind, group, node), by, reason)


async def unpause_job(
    client: Any,
    kind: str,
    group: Any,
    path: Any,
    *,
    node: Any = None,
    prefix: Path = RUN_PREFIX,
    pause_prefix: Path = PAUSE_PREFIX,
) -> dict[str, Any]:
    """Lift the pause of the job at ``path``.  Returns ``{"unpaused": True
    if it had a pause of its own, "group_paused": the group's pause in
    words, or None}`` (a job whose group is paused stays paused until
    `unpause_group`).  `NotFound` when there is no such job."""
    path = as_path(path, "job")
    sub = Path.build(runner_subpath(kind, group, node))
    await get_entry(client, prefix + sub, path, "job")  # NotFound: no such job
    lifted = await _lift(client, pause_path(pause_prefix, kind, group, node, path))
    pauses = await group_pauses(client, kind, group, node=node, pause_prefix=pause_prefix)
    return {"unpaused": lifted, "group_paused": pause_of(pauses, ())}


async def unpause_group(
    client: Any,
    kind: str,
    group: Any,
    *,
    node: Any = None,
    prefix: Path = RUN_PREFIX,
    pause_prefix: Path = PAUSE_PREFIX,
) -> bool:
    """Lift the pause of a whole group (see `pause_group`); True if it was
    paused.  `NotFound` when the group has no job of that kind and no pause."""
    sub = Path.build(runner_subpath(kind, group, node))
    lifted = await _lift(client, pause_path(pause_prefix, kind, group, node))
    if not lifted and not await _has_jobs(client, prefix + sub):
        raise NotFound("job", group, f"no jobs in {_group_words(kind, group, node)}")
    return lifted


async def group_pauses(
    client: Any, kind: str, group: Any, *, node: Any = None, pause_prefix: Path = PAUSE_PREFIX
) -> dict[tuple[Any, ...], Any]:
    """The pauses of a group: {path below the group (``()``: the group's
    own): stored value}, for `_pause.pause_of`."""
    base = pause_path(pause_prefix, kind, group, node)
    return {tuple(p): v async for p, v in list_entries(client, base)}


async def job_pause(
    client: Any, kind: str, group: Any, path: Any, *, node: Any = None, pause_prefix: Path = PAUSE_PREFIX
) -> str | None:
    """Why the job at ``path`` is paused, in words, or None (it is not)."""
    pauses = await group_pauses(client, kind, group, node=node, pause_prefix=pause_prefix)
    return pause_of(pauses, tuple(as_path(path, "job")))


async def all_pauses(client: Any, *, pause_prefix: Path = PAUSE_PREFIX) -> dict[tuple[Any, ...], Any]:
    """Every stored pause: {path below ``pause_prefix``: value}, for `pauses_by_group`."""
    return {tuple(p): v async for p, v in list_entries(client, pause_prefix)}


def pauses_by_group(pauses: Mapping[tuple[Any, ...], Any], sub: tuple[Any, ...]) -> dict[tuple[Any, ...], Any]:
    """The pauses of the group at ``sub`` (a `runner_subpath`) picked from
    every pause ({path below the pause prefix: value}), relative to it."""
    n = len(sub)
    return {k[n:]: v for k, v in pauses.items() if tuple(k[:n]) == tuple(sub)}
