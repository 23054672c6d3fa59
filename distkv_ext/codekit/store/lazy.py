"""`LazyRoot`: a live mirror of only the entries it was asked for.

A `StoreRoot` reads its whole subtree when it starts.  A `LazyRoot`
reads nothing then: it watches the subtree *without* fetching it (one
watch, so every change still arrives), and fetches an entry with one
``get`` when asked (`fetch_entry`).  From then on the watch keeps that entry
current, as it keeps every entry that changed since the watch started.

So an entry is *known* (its mirrored value is the stored one, or its
absence is) once it was fetched or a change of it arrived; `known` says
which.  A change that arrives while the entry is being fetched wins over
the reply of the ``get`` (the server sends changes in order; a reply
older than that change would otherwise undo it; a newer one is followed
by its own change).

When the server drops the watch (`ResyncRoot`), it is set up again and
every known entry is fetched again (entries deleted meanwhile are
dropped then).
"""

import logging
from collections.abc import Iterable
from typing import Any

import anyio
from anyio.abc import TaskStatus
from distkv.exceptions import ServerError
from moat.util import NotGiven, PathLongener

from .mirror import StoreRoot

logger = logging.getLogger(__name__)

__all__ = ["LazyRoot"]

Key = tuple[Any, ...]


class LazyRoot(StoreRoot):
    """A `StoreRoot` that starts without reading its subtree and fetches
    entries on demand (see the module doc)."""

    #: at most this many ``list`` requests answer one `fetch_below`
    LIST_BUDGET = 50
    #: at most this many ``get`` requests of `fetch_entries` at once (a
    #: stored text that imports thousands of names must not flood the server)
    CONCURRENT_GETS = 16
    _limiter: anyio.CapacityLimiter | None = None

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._known: set[Key] = set()
        self._events: dict[Key, int] = {}  # how many changes of an entry arrived
        self._below: dict[Key, bool] = {}  # has the store anything with a value below it?
        self._inflight: dict[Key, anyio.Event] = {}
        #: how many ``get`` requests `fetch_entry` sent (for tests and benchmarks)
        self.fetches = 0

    def known(self, path: Iterable[Any]) -> bool:
        """Is the mirrored state of ``path`` the stored one (fetched, or changed
        since the watch started)?"""
        return tuple(path) in self._known

    async def fetch_entry(self, path: Iterable[Any]) -> Any:
        """Fetch the entry at ``path`` unless it is known; return the mirror's
        entry there (None if nothing is stored)."""
        key = tuple(path)
        while key not in self._known:
            busy = self._inflight.get(key)
            if busy is not None:  # another task fetches it: wait for that one
                await busy.wait()
                continue
            self._inflight[key] = done = anyio.Event()
            try:
                before = self._events.get(key, 0)
                self.fetches += 1
                res = await self.client.get(self._path + key, nchain=3)
                if self._events.get(key, 0) == before:  # else a change arrived meanwhile: it is newer
                    await self._apply(key, res.get("value", NotGiven), res.get("chain", None))
                self._known.add(key)
            finally:
                del self._inflight[key]
                done.set()
        return self.follow(key, create=False, empty_ok=True)

    async def fetch_entries(self, paths: Iterable[Iterable[Any]]) -> None:
        """`fetch_entry` each of ``paths`` that is not known, concurrently."""
        todo = {tuple(p) for p in paths} - self._known
        if len(todo) == 1:
            await self.fetch_entry(todo.pop())
            return
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.CONCURRENT_GETS)
        limiter = self._limiter

        async def one(key: Key) -> None:
            async with limiter:
                await self.fetch_entry(key)

        async with anyio.create_task_group() as tg:
            for key in sorted(todo, key=repr):
                tg.start_soon(one, key)

    def below_known(self, path: Iterable[Any]) -> bool | None:
        """Is anything with a value stored below ``path``: True / False, or
        None if that is not known (see `fetch_below`)."""
        key = tuple(path)
        node = self.follow(key, create=False, empty_ok=True) if key else self
        if node is not None and any(True for _ in node.all_children):
            return True
        return self._below.get(key)

    async def fetch_below(self, path: Iterable[Any]) -> bool:
        """Ask the server whether anything with a value is stored below
        ``path`` (``list`` requests, level by level, until something is
        found; at most `LIST_BUDGET`); the answer is kept up to date by
        the watch."""
        key = tuple(path)
        known = self.below_known(key)
        if known is not None:
            return known
        found = await self._anything_below(key, [self.LIST_BUDGET])
        if key not in self._below:  # (a change below it may have answered meanwhile)
            self._below[key] = found
        return self._below[key]

    async def _anything_below(self, key: Key, budget: list[int]) -> bool:
        # A store full of empty nodes (deleted entries) would make us walk
        # them all: after LIST_BUDGET requests, "nothing" it is.
        if budget[0] <= 0:
            return False
        budget[0] -= 2
        try:
            if await self.client.list(self._path + key, with_data=False, empty=False):
                return True
            names = await self.client.list(self._path + key, with_data=False, empty=True)
        except ServerError as exc:  # DistKV's answer for a path with no node: KeyError(path)
            if "KeyError" in str(exc):
                return False
            raise
        for name in names or ():
            if await self._anything_below((*key, name), budget):
                return True
        return False

    # --- the watch ---

    async def _watch(self, task_status: TaskStatus[None]) -> None:
        """One watch of the subtree, without fetching it, until it fails."""
        pl = PathLongener(())
        async with self.client.watch(self._path, long_path=False, nchain=3, fetch=False) as w:
            if not self._running_called:
                self._running_called = True
                await self.running()
                task_status.started()
            else:  # the server dropped our watch: what we know may be stale
                self._tg.start_soon(self._refresh)
            async for r in w:
                if "path" not in r:
                    continue
                pl(r)
                await self._changed(tuple(r.path), r.get("value", NotGiven), r.get("chain", None))

    async def _changed(self, key: Key, value: Any, chain: Any) -> None:
        self._events[key] = self._events.get(key, 0) + 1
        self._known.add(key)
        for i in range(len(key)):
            if value is not NotGiven:
                self._below[key[:i]] = True
            else:
                self._below.pop(key[:i], None)  # maybe nothing is left: ask again when needed
        await self._apply(key, value, chain)

    async def _refresh(self) -> None:
        """Fetch every known entry again (after the watch was set up anew)."""
        keys = sorted(self._known, key=repr)
        self._known = set()
        self._below = {}
        for key in keys:
            try:
                before = self._events.get(key, 0)
                res = await self.client.get(self._path + key, nchain=3)
                if self._events.get(key, 0) == before:
                    value, chain = res.get("value", NotGiven), res.get("chain", None)
                    if not self._unchanged(key, value, chain):
                        await self._apply(key, value, chain)
                self._known.add(key)
            except Exception as exc:
                logger.warning("%s: could not fetch %s again: %r", self.client.name, key, exc)
