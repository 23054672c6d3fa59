"""A runner root's answers to trouble with the store: fencing itself
while its writes are not confirmed (`fence_until_confirmed`), and
recording a job's error without ever raising (`record_run_error`)."""

import logging
from typing import Any

import anyio

logger = logging.getLogger(__name__)

__all__ = ["fence_until_confirmed", "record_run_error"]


def fence_until_confirmed(root: Any, reason: str) -> None:
    """A write of ``root`` (a runner root) on the claim path was not
    confirmed in time: suspend its group membership (the group counts it
    as gone, its shared jobs stop: `Group.suspend`) and rejoin once a
    probe write is confirmed.  Nothing while already suspended."""
    group = root.group
    if group is None or group.suspended is not None or group.spawn is None:
        return
    group.suspend(f"fencing: {reason}")
    group.spawn(_until_the_store_answers, root)


async def _until_the_store_answers(root: Any) -> None:
    cfg = root.config
    while True:
        await anyio.sleep(cfg.heartbeat)
        with anyio.move_on_after(cfg.write_seconds):
            try:
                if root.group is not None:
                    await root.group.confirm_write()
            except Exception as exc:  # not yet: try again
                logger.debug("%s: the store does not answer yet: %r", root.node, exc)
                continue
            if root.group is not None:
                root.group.suspend(None)
            return


async def record_run_error(
    err: Any,
    entry: Any,
    message: str | None,
    data: dict[str, Any] | None = None,
    exc: BaseException | None = None,
    *,
    path: Any = None,
    severity: int = 0,
    comment: str | None = None,
    force: bool = False,
) -> None:
    """Record an error of the job ``entry`` in DistKV's error tree
    (``err``, its handler) at ``path`` (default: the job's entry) and wait
    up to 2 s until it is there; failures to record are logged, not
    raised."""
    try:
        r = await err.record_error(
            "run",
            entry._path if path is None else path,
            exc=exc,
            message=message,
            data=data or {},
            severity=severity,
            comment=comment,
            force=force,
        )
        if r is not None:
            with anyio.move_on_after(2):
                await err.wait_chain(r.chain)
    except Exception as e:
        logger.warning("could not record the error of %s: %r", entry, e)
