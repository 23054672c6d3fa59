"""`StoreRoot`: the shared base of our live mirrors (procedures, modules,
runner states)."""

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import anyio
from moat.util import NotGiven, Path

from .clientapi import Client
from .conn import server_errors
from .entries import delete_entry
from .history import HistoryKind, record
from .resync import ResyncRoot

__all__ = ["StoreRoot"]


class StoreRoot(ResyncRoot):
    """A `distkv.obj.ClientRoot` that

    * loads its subtree again when the server drops its watch (`ResyncRoot`),
    * is shared per client under a name of ours (so it never collides
      with DistKV's own handler of the same subtree),
    * returns from `as_handler` only once the subtree is loaded,
    * writes and deletes so that the change is in this mirror on return,
    * saves the version a write or delete replaces in the history
      (`distkv_ext.codekit.store.history`) when ``HISTORY_KIND`` is set,
    * maps connection failures to `ServerUnreachable`.
    """

    #: "proc" or "module": keep a history of this subtree's entries
    HISTORY_KIND: ClassVar[HistoryKind | None] = None

    @classmethod
    async def as_handler(
        cls,
        client: Client,
        cfg: Mapping[str, Any] | None = None,
        key: str = "prefix",
        subpath: tuple[Any, ...] = (),
        name: str | None = None,
        **kw: Any,
    ) -> Self:
        """Return the (shared, per client) handler, loaded: the first call
        with a client starts it (named after our package, the client's
        name, ``CFG``, ``key`` and ``subpath`` unless ``name`` is given);
        later calls return the same one."""
        if name is None:
            name = str(Path("_distkv_code", client.name, cls.CFG, key, *subpath))
        async with server_errors():
            root: Self = await super().as_handler(client, cfg=cfg, key=key, subpath=subpath, name=name, **kw)
            await root.wait_loaded()
        return root

    async def write(self, path: Path, value: Any, chain: Any = NotGiven) -> Any:
        """Store ``value`` at ``path`` (below this root); wait until this
        mirror has it; return DistKV's reply.  ``chain``: only if unchanged
        since (see DistKV).  The replaced value goes to the history."""
        await self._save_history(path)
        async with server_errors():
            res = await self.client.set(self._path + path, value=value, chain=chain, nchain=2)
            await self.wait_chain(res.chain)
        return res

    async def remove_entry(self, path: Path, what: str) -> None:
        """Delete the entry at ``path``; `NotFound` (naming ``what``) if
        there is none.  The deleted value goes to the history.  Returns
        once this mirror has dropped it (or after 5 s)."""
        await self._save_history(path)
        await delete_entry(self.client, self._path, path, what)
        with anyio.move_on_after(5):
            # a mirror signals no deletion: poll
            while (e := self.follow(path, create=False)) is not None and e.value is not NotGiven:  # noqa: ASYNC110
                await anyio.sleep(0.01)

    async def _save_history(self, path: Path) -> None:
        if self.HISTORY_KIND is None:
            return
        e = self.follow(path, create=False)
        if e is not None and isinstance(e.value, dict):
            await record(self.client, self.HISTORY_KIND, path, e.value)
