"""The runner daemon behind ``distkv client run all``.

`run_daemon` starts the procedure and module handlers and one runner
root, tells systemd it is ready (``READY=1``; ``WATCHDOG=1`` pings while
its event loop is alive), and runs until SIGTERM or SIGINT; then it
stops cleanly: it leaves the group (the others take over its any-node
jobs at once), stops its jobs and records that in their state entries.
"""

import logging
import signal

import anyio

from distkv_ext.codekit.core.errors import BadArguments, ServerUnreachable

from ._group import NameClash
from ._layout import runner_subpath
from ._root import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from ._sdnotify import notify, watchdog_interval

logger = logging.getLogger(__name__)

__all__ = ["run_daemon", "KINDS"]

KINDS = {"any": AnyRunnerRoot, "all": AllRunnerRoot, "single": SingleRunnerRoot}


async def _watchdog(interval):
    while True:
        notify("WATCHDOG=1")
        await anyio.sleep(interval)


async def _die_with_the_connection(root):
    """The daemon cannot work without its server: leave (exit status 5),
    so that systemd restarts it, rather than hang."""
    await root.lost_event.wait()
    if isinstance(root.lost, NameClash):
        notify(f"STATUS={root.lost}")
        raise BadArguments(f"{root.lost}: give each runner its own --name")
    notify("STATUS=lost the DistKV server")
    raise ServerUnreachable(f"lost the connection to the DistKV server: {root.lost!r}")


async def run_daemon(client, kind, group, *, node=None, cfg=None, task_status=anyio.TASK_STATUS_IGNORED):
    """Run the ``kind`` runner of ``group`` until SIGTERM/SIGINT.

    ``node``: for "single", the node whose jobs run here; else this
    node's name in the group (default: the client's name).
    """
    from distkv_ext.code import CodeRoot

    subpath = runner_subpath(kind, group, node)
    cr = await CodeRoot.as_handler(client)
    root = await KINDS[kind].as_handler(client, subpath=subpath, code=cr, node=node, cfg=cfg)
    what = f"{kind}-node runner of group {group} as {root.node}"
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
