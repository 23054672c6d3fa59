"""`ResyncRoot`: a live mirror whose watch survives the server dropping it.

DistKV 0.65's server queues at most 100 changes per watch.  When a client
falls behind by more (a burst of writes, a busy machine), the server ends
the watch with an error, and `distkv.obj.ClientRoot` simply fails: a runner
would exit and leave its jobs to others until it is restarted.

`ResyncRoot` watches again instead, fetching the whole subtree: entries
that changed meanwhile are updated, entries deleted meanwhile (absent from
the fresh copy, and from the server when asked) are dropped, and waiters
(`wait_chain`) keep working.
``running()`` is still called once, after the first complete load.
Losing the connection is not resynced: the mirror stops being updated
(as DistKV's does) or the connection error propagates.

Drops come in storms (a bulk deploy of thousands of entries, while the
machine is busy): each reload of a large subtree costs more than the
burst that caused it, so after ``RESYNC_LIMIT`` drops within
``RESYNC_WINDOW`` seconds the next watch waits longer (doubling, at most
``RESYNC_MAX_PAUSE`` seconds), letting the burst pass; it never gives up
while the server is there (a runner that exited would reload it all on
its restart anyway, and leave its jobs meanwhile).
"""

import heapq
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self

import anyio
from anyio.abc import TaskStatus
from asyncscope import scope
from distkv.exceptions import DistKVError, ServerClosedError, ServerConnectionError, ServerError
from distkv.obj import ClientRoot
from moat.util import NotGiven, PathLongener

logger = logging.getLogger(__name__)

__all__ = ["ResyncRoot"]


class ResyncRoot(ClientRoot):
    """A `distkv.obj.ClientRoot` that re-watches (and re-fetches) its
    subtree when the server aborts the watch (see the module doc)."""

    #: past this many aborted watches within ``RESYNC_WINDOW`` seconds, wait
    #: longer before watching again (see the module doc)
    RESYNC_LIMIT: ClassVar[int] = 10
    RESYNC_WINDOW: ClassVar[float] = 60.0
    #: the longest wait before watching again (seconds)
    RESYNC_MAX_PAUSE: ClassVar[float] = 30.0
    #: seconds one read may take when checking entries a new fetch left out
    CHECK_SECONDS: ClassVar[float] = 10.0

    #: how many times the watch was aborted and set up again
    resyncs: int = 0
    _running_called: bool = False

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Self]:
        """Fetch, and keep updating, the subtree while the context is open."""
        if self._require_client:
            scope.requires(self.client.scope)
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(self._watch_loop)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _watch_loop(self, *, task_status: TaskStatus[None]) -> None:
        await self.run_starting()
        aborts: list[float] = []
        while True:
            try:
                await self._watch(task_status)
                # the stream ended without an error: the client closed it
                # (connection gone); whoever owns the client notices that
                return
            except (ServerClosedError, ServerConnectionError):
                raise
            except ServerError as exc:
                now = time.monotonic()
                aborts = [t for t in aborts if now - t < self.RESYNC_WINDOW] + [now]
                self.resyncs += 1
                pause = self.resync_pause(len(aborts))
                logger.warning(
                    "%s: the server dropped the watch of %s (%s): loading it again in %.1f s",
                    self.client.name,
                    self._path,
                    exc,
                    pause,
                )
                await anyio.sleep(pause)

    @classmethod
    def resync_pause(cls, recent: int) -> float:
        """Seconds to wait before watching again after the ``recent``-th
        drop within ``RESYNC_WINDOW``: 0.1 s per drop up to
        ``RESYNC_LIMIT``, then doubling per further drop, at most
        ``RESYNC_MAX_PAUSE``."""
        pause = 0.1 * min(recent, cls.RESYNC_LIMIT)
        if recent > cls.RESYNC_LIMIT:
            pause *= 2.0 ** min(recent - cls.RESYNC_LIMIT, 16)
        return min(pause, cls.RESYNC_MAX_PAUSE)

    async def _watch(self, task_status: TaskStatus[None]) -> None:
        """One watch (fetching the subtree first), until it fails."""
        pl = PathLongener(())
        seen: set[tuple[Any, ...]] | None = set()  # while loading: what the fresh copy has
        refetch = self._running_called  # not the first load: most is known
        async with self.client.watch(self._path, long_path=False, nchain=3, fetch=True) as w:
            async for r in w:
                if "path" not in r:
                    if seen is not None and r.get("state", "") == "uptodate":
                        await self._drop_unseen(seen)
                        seen = None
                        if not self._running_called:
                            self._running_called = True
                            await self.running()
                            task_status.started()
                    continue
                pl(r)
                value, chain = r.get("value", NotGiven), r.get("chain", None)
                if seen is not None:
                    seen.add(tuple(r.path))
                    if refetch and self._unchanged(r.path, value, chain):
                        continue  # (re-applying it would recompile, restart jobs)
                await self._apply(r.path, value, chain)

    async def reload_entry(self, entry: Any) -> bool:
        """Read ``entry`` (one of this mirror's) from the server again and
        take what it has, value or absence; True if taken.

        For a conditional write of it that the server refused (the entry
        changed, appeared or went since the chain we had): the change is
        usually on its way through the watch, but if the mirror missed it
        (a deletion it never heard of), every later write of that entry
        would be refused the same way, for good.  Nothing is taken if the
        mirror's entry changed, went or was replaced while the read was
        under way (the watch was quicker), nor if it equals the server's."""
        path = tuple(entry.subpath)
        known = entry.chain
        res = await self.client.get(self._path + path, nchain=3)
        current = self.follow(path, create=False, empty_ok=True)
        if current is not entry or current.chain != known:
            return False  # (gone from the tree, replaced, or changed: the watch was quicker)
        value, chain = res.get("value", NotGiven), res.get("chain", None)
        if self._unchanged(path, value, chain):
            return True  # the mirror was right (re-applying it would restart a job)
        logger.info(
            "%s: %s reloaded from the server after a refused write (%s)",
            self.client.name,
            self._path + path,
            "gone" if value is NotGiven else "changed",
        )
        await self._apply(path, value, chain)
        return True

    def _unchanged(self, path: Any, value: Any, chain: Any) -> bool:
        entry = self.follow(path, create=False, empty_ok=True)
        same: bool = entry is not None and chain is not None and entry.chain == chain and entry.value == value
        return same

    async def _apply(self, path: Any, value: Any, chain: Any) -> None:
        entry = self.follow(path, create=None, empty_ok=True)
        if entry is not None:
            if chain is not None and entry.chain == chain:
                await entry.seen_value()
            entry.chain = None if value is NotGiven else chain
            await entry.set_value(value)
            if value is NotGiven and not entry:
                await self._prune(entry)
        if self._need_wait:
            self._saw(chain)

    @staticmethod
    async def _prune(entry: Any) -> None:
        """Drop an entry without value or children (and such parents)."""
        names = list(entry.subpath)
        while names:
            await entry.set_value(NotGiven)  # class-specific side effects
            entry = entry.parent
            del entry[names.pop()]
            if entry:
                break

    async def _drop_unseen(self, seen: set[tuple[Any, ...]]) -> None:
        """After a (re-)fetch: entries the fresh copy did not have are gone
        (a no-op on the first load: the tree was empty).

        Unless the server still has them: its fetch leaves out what changed
        after the watch began, because the watch reports that change, and
        that report may come after "uptodate".  Taken for a deletion, a
        job's entry that changed in that moment would stop its run and
        delete its state.  So the entries with a value that the fetch left
        out are asked for, in the background (the watch goes on), and
        dropped only if the server has none (`_drop_if_gone`)."""
        unseen = []
        for entry in list(self.all_children):
            path = tuple(entry.subpath)
            if path in seen:
                continue
            if entry.value is NotGiven:
                await self._apply(path, NotGiven, None)
            else:
                unseen.append((path, entry))
        if unseen:
            self._tg.start_soon(self._drop_if_gone, unseen)

    async def _drop_if_gone(self, unseen: list[tuple[tuple[Any, ...], Any]]) -> None:
        """Drop each of ``unseen`` ((path, entry)) that the server has no
        value for, unless the watch changed it meanwhile.  One that the
        server has is left alone: its change is on its way through the
        watch.  Stops at the first read that fails (the connection's
        owner hears of that)."""
        for path, entry in unseen:
            known = entry.chain
            try:
                with anyio.fail_after(self.CHECK_SECONDS):
                    res = await self.client.get(self._path + path, nchain=0)
            except (TimeoutError, DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
                logger.info("%s: could not check what %s lacked: %r", self.client.name, self._path, exc)
                return
            if "value" in res:
                continue
            current = self.follow(path, create=False, empty_ok=True)
            if current is entry and current.chain == known and current.value is not NotGiven:
                await self._apply(path, NotGiven, None)

    def _saw(self, chain: Any) -> None:
        """Wake `wait_chain` callers waiting for a tick this chain covers."""
        while chain is not None:
            node, tick = chain.node, chain.tick
            if self._seen.get(node, 0) < tick:
                self._seen[node] = tick
            waiting = self._waiters.get(node)
            while waiting and waiting[0][0] <= tick:
                heapq.heappop(waiting)[1].set()
            chain = chain.get("prev", None)
