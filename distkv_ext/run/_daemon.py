"""The runner daemon behind ``distkv client run all``.

`run_daemon` starts the procedure and module handlers and one runner
root, tells systemd it is ready (``READY=1``; ``WATCHDOG=1`` pings while
its event loop is alive), and runs until SIGTERM or SIGINT; then it
stops cleanly: it leaves the group (the others take over its any-node
jobs at once), stops its jobs and records that in their state entries.
"""

import logging
import signal
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc

from distkv_ext.code import CodeRoot
from distkv_ext.codekit.core.errors import BadArguments, ServerUnreachable

from ._config import RunnerConfig
from ._group import NameClash
from ._layout import runner_subpath
from ._root import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot, _RunnerRoot
from ._sdnotify import notify, watchdog_interval

logger = logging.getLogger(__name__)

__all__ = ["run_daemon", "KINDS"]

#: runner kind -> its root class
KINDS: dict[str, type[_RunnerRoot]] = {"any": AnyRunnerRoot, "all": AllRunnerRoot, "single": SingleRunnerRoot}


async def _watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await anyio.sleep(interval)


async def _die_with_the_connection(root: _RunnerRoot) -> None:
    """The daemon cannot work without its server: leave (exit status 5),
    so that systemd restarts it, rather than hang."""
    await root.lost_event.wait()
    if isinstance(root.lost, NameClash):
        notify(f"STATUS={root.lost}")
        raise BadArguments(f"{root.lost}: give each runner its own --name")
    notify("STATUS=lost the DistKV server")
    raise ServerUnreachable(f"lost the connection to the DistKV server: {root.lost!r}")


async def run_daemon(
    client: Any,
    kind: str,
    group: Any,
    *,
    node: str | None = None,
    cfg: Mapping[str, Any] | RunnerConfig | None = None,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> _RunnerRoot:
    """Run the ``kind`` runner ("any", "all", "single") of ``group`` until
    SIGTERM/SIGINT, then stop it cleanly; return the runner root.

    ``node``: for "single", the node whose jobs run here; else this
    node's name in the group (default: the client's name).  ``cfg``: a
    `RunnerConfig`, or a mapping updating the ``runner:`` configuration.
    ``task_status.started(root)`` once it runs.  Raises `BadArguments`
    for a bad setting or when another runner of the group has our name,
    `ServerUnreachable` when the connection to the server is lost.
    """
    subpath = runner_subpath(kind, group, node)
    cr = await CodeRoot.as_handler(client)
    root = await KINDS[kind].as_handler(client, subpath=subpath, code=cr, node=node, cfg=cfg)
    what = f"{kind}-node runner of group {group} as {root.node}"
    if root.policy.heartbeat_group:
        what += f", group {root.group_keys.describe()}"
    if root.config.trusted_keys:
        what += f", only code signed by {len(root.config.trusted_keys)} trusted key(s)"
    logger.info("Started the %s", what)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as tg:
            interval = watchdog_interval()
            if interval:
                tg.start_soon(_watchdog, interval)
            tg.start_soon(_die_with_the_connection, root)
            notify("READY=1", f"STATUS=running: {what}")
            task_status.started(root)
            async for sig in signals:
                logger.info("Signal %s: stopping", signal.Signals(sig).name)
                break
            notify("STOPPING=1", "STATUS=stopping")
            with anyio.CancelScope(shield=True):
                await root.stop()
            tg.cancel_scope.cancel()
    return root
