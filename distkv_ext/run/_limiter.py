"""The concurrency limits of one runner root: `Limits` (see `_limits` for the design).

``await limits.acquire(entry, run, say)`` returns once the run holds a
slot of each of its job's limits (at once for a job without limits);
``await limits.release(run)`` gives them back once the run has ended.  A
stop of the run while it waits cancels the wait, and whatever it had
taken is given back.  The root joins a group's limit channel
(`LimitChannel`) when the first run of a limited job of that group starts.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._entry import RunnerEntry
from ._limitchan import LimitChannel, LimitHost
from ._limits import job_limits

if TYPE_CHECKING:
    from ._running import Running  # (imports _admin, which imports _host, which imports us)

__all__ = ["Limits"]


class Limits:
    """The concurrency limits of one runner root (see the module doc)."""

    def __init__(self, host: LimitHost) -> None:
        self.host = host
        self.channels: dict[str, LimitChannel] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Lock()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve the limit channels (each joined on first use) until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            await anyio.sleep_forever()

    async def _channel(self, group: Any) -> LimitChannel:
        async with self._lock:
            ch = self.channels.get(str(group))
            if ch is None:
                if self._tg is None:
                    raise RuntimeError("the limits are not running")
                ch = LimitChannel(self.host, group)
                await self._tg.start(ch.run)
                self.channels[str(group)] = ch
            return ch

    async def acquire(self, entry: RunnerEntry, run: "Running", say: Callable[[str | None], Awaitable[None]]) -> None:
        """Return once ``run`` holds a slot of each limit of ``entry``
        (taken in name order); ``say(text)`` tells what it waits for, and
        ``say(None)`` once it has them all (only if it waited).  Cancelled
        (the run stops): what it took is given back."""
        limits = job_limits(entry.limits)
        if not limits:
            return
        ch = await self._channel(self.host.limit_group_of(entry))
        waited = False

        async def said(text: str | None) -> None:
            nonlocal waited
            waited = True
            await say(text)

        try:
            for name, n in limits:
                await ch.take(name, n, run, entry.job_name, said)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await ch.give_back(run)
            raise
        if waited:
            await say(None)

    async def release(self, run: "Running") -> None:
        """Give back every slot ``run`` holds (its code has stopped)."""
        for ch in list(self.channels.values()):
            await ch.give_back(run)
