"""A live copy of one subtree of the store that reports every change.

`Tree` is a `ResyncRoot` (DistKV's mirror, which loads its subtree again
when the server drops a watch that fell behind): the status page keeps
one per subtree it shows (runner entries, states, output, errors,
procedures, their history), shared by every browser; no browser causes
a read of the store.

Each change calls ``on_change(path, value)`` (``path`` a tuple below the
subtree, ``value`` `NotGiven` when the entry is gone), after ``shrink``
(if given) has cut the value down to what the page needs: a job's output
is kept as its last lines, not all of them.
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from distkv.obj import ClientEntry
from moat.util import NotGiven

from distkv_ext.codekit.store.conn import server_errors
from distkv_ext.codekit.store.resync import ResyncRoot

logger = logging.getLogger(__name__)

__all__ = ["Tree", "open_tree"]

OnChange = Callable[[tuple[Any, ...], Any], None]


class _Node(ClientEntry):
    """An entry of a `Tree`: tells its root of every new value."""

    @classmethod
    def child_type(cls, name: Any) -> type["_Node"]:
        return _Node

    async def set_value(self, value: Any) -> None:
        root = self.root
        if value is not NotGiven and root.shrink is not None:
            try:
                value = root.shrink(tuple(self.subpath), value)
            except Exception as exc:  # a hostile value: keep it as it is
                logger.debug("shrink %s: %r", self.subpath, exc)
        await super().set_value(value)
        try:
            root.on_change(tuple(self.subpath), value)
        except Exception:  # the page's bug must not stop the mirror
            logger.exception("status page: handling %s failed", self.subpath)


class Tree(ResyncRoot):
    """A subtree of the store, kept up to date; see the module doc."""

    CFG = "runner"  # unused: trees are opened with `open_tree`, not as_handler

    def __init__(
        self,
        client: Any,
        path: Any,
        *,
        on_change: OnChange,
        shrink: Callable[[tuple[Any, ...], Any], Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(client, path, **kw)
        self.on_change = on_change
        self.shrink = shrink

    @classmethod
    def child_type(cls, name: Any) -> type[_Node]:
        return _Node

    def _unchanged(self, path: Any, value: Any, chain: Any) -> bool:
        if self.shrink is not None:
            return False  # what we keep is not what the server has
        return bool(super()._unchanged(path, value, chain))


@asynccontextmanager
async def open_tree(
    client: Any,
    path: Any,
    on_change: OnChange,
    shrink: Callable[[tuple[Any, ...], Any], Any] | None = None,
) -> AsyncIterator[Tree]:
    """Load the subtree at ``path`` (calling ``on_change`` for each entry),
    then keep it up to date while the context is open."""
    async with AsyncExitStack() as stack:
        async with server_errors():  # only the start: what the body raises passes unchanged
            tree = await stack.enter_async_context(
                client.mirror(
                    path, root_type=Tree, need_wait=True, require_client=False, on_change=on_change, shrink=shrink
                )
            )
            await tree.wait_loaded()
        yield tree
