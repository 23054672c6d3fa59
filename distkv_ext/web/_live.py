"""Feeding a `StatusModel`: one watch per subtree, one observer per group.

`run_model` opens a `Tree` (a DistKV watch that survives being dropped)
on each subtree the page shows: runner entries, their states, their
output, DistKV's error tree, the procedures and their history.  For each
group (those given, and those whose jobs appear) it listens to the group
channels read-only (`distkv_ext.run.GroupObserver`: the runners' own
message parsing) to know the members.  The store is never polled, and
the number of browsers changes nothing here.
"""

import functools
import logging
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc
from moat.util import P, Path

from distkv_ext.codekit.core.errors import ServerUnreachable
from distkv_ext.codekit.store.history import HISTORY_PREFIX
from distkv_ext.run import OUTPUT_PREFIX, GroupKeys, GroupObserver, group_topic, pause_prefix, watch_connection

from ._model import StatusModel, shrink_output
from ._tree import open_tree

logger = logging.getLogger(__name__)

__all__ = ["run_model", "prefixes"]

#: A quiet message topic whose subscription tells when the server is gone.
ALIVE_TOPIC = ("distkv_code", "web", "alive")


def _path(v: Any, default: Path) -> Path:
    if v is None:
        return default
    if isinstance(v, Path):
        return v
    if isinstance(v, str):
        return P(v)
    return Path.build(v)


def prefixes(cfg: Any) -> dict[str, Path]:
    """Where the page reads, from the client's configuration: run, state,
    output, errors, procs, history, pause."""
    r = cfg.get("runner") or {}
    return {
        "run": _path(r.get("prefix"), P(":.distkv.run")),
        "state": _path(r.get("state"), P(":.distkv.state")),
        "output": _path(r.get("output"), OUTPUT_PREFIX),
        "errors": _path((cfg.get("errors") or {}).get("prefix"), P(":.distkv.error")),
        "procs": _path((cfg.get("codes") or {}).get("prefix"), P(":.distkv.code.proc")),
        "history": HISTORY_PREFIX + ("proc",),
        "pause": pause_prefix(r),
    }


async def run_model(
    client: Any,
    model: StatusModel,
    *,
    timeout: float = 2.0,
    keys: GroupKeys | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Load everything into ``model``, then keep it up to date until
    cancelled.  ``timeout``: the groups' ``runner.timeout``; ``keys``: their
    `GroupKeys` (the page checks what it hears as the runners do).  Raises
    `ServerUnreachable` when the connection is lost (noticed on a quiet
    message topic of its own, as a single-node runner does)."""
    pre = prefixes(client._cfg)
    model.run_prefix = tuple(pre["run"])
    lost: list[BaseException] = []
    gone = anyio.Event()

    def on_lost(exc: BaseException) -> None:
        lost.append(exc)
        gone.set()

    async with anyio.create_task_group() as tg:
        await tg.start(watch_connection, client, ALIVE_TOPIC, on_lost)

        def new_group(kind: str, group: Any, node: Any) -> None:
            key = (kind, group, node)
            if key in model.observers:
                return
            obs = GroupObserver(
                client,
                group_topic(kind, group, node),
                timeout=timeout,
                keys=keys,
                on_change=functools.partial(model.members_changed, kind, group, node),
                on_claim=functools.partial(model.on_claim, kind, group),
            )
            model.observers[key] = obs
            tg.start_soon(obs.run)
            model.members_changed()

        model.on_new_group = new_group
        for g in sorted(model.groups):
            model.seen_groups.update({("any", g, None), ("all", g, None)})
            new_group("any", g, None)
            new_group("all", g, None)
        async with AsyncExitStack() as stack:
            for name, handler, shrink in (
                ("run", model.on_job, None),
                ("state", model.on_state, None),
                ("output", model.on_output, shrink_output),
                ("errors", model.on_error, None),
                ("procs", model.on_proc, None),
                ("history", model.on_history, None),
                ("pause", model.on_pause, None),
            ):
                await stack.enter_async_context(open_tree(client, pre[name], handler, shrink))
            model.loaded = True
            logger.info("status page: loaded %d jobs", len(model.jobs))
            task_status.started()
            await gone.wait()
            raise ServerUnreachable(f"lost the connection to the DistKV server: {lost[0]!r}")
