"""`StoreRoot`: the shared base of our live mirrors (procedures, modules,
runner states)."""

import anyio
from moat.util import NotGiven, Path

from .conn import server_errors
from .entries import delete_entry
from .history import record
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
      (`distkv_ext.codekit.history`) when ``HISTORY_KIND`` is set,
    * maps connection failures to `ServerUnreachable`.
    """

    #: "proc" or "module": keep a history of this subtree's entries
    HISTORY_KIND = None

    @classmethod
    async def as_handler(cls, client, cfg=None, key="prefix", subpath=(), name=None, **kw):
        """Return the (shared, per client) handler, loaded."""
        if name is None:
            name = str(Path("_distkv_code", client.name, cls.CFG, key, *subpath))
        async with server_errors():
            root = await super().as_handler(client, cfg=cfg, key=key, subpath=subpath, name=name, **kw)
            await root.wait_loaded()
        return root

    async def write(self, path, value, chain=NotGiven):
        """Store ``value`` at ``path`` (below this root); wait until this
        mirror has it.  ``chain``: only if unchanged since (see DistKV)."""
        await self._save_history(path)
        async with server_errors():
            res = await self.client.set(self._path + path, value=value, chain=chain, nchain=2)
            await self.wait_chain(res.chain)
        return res

    async def remove_entry(self, path, what):
        """Delete the entry at ``path``; `NotFound` if there is none.
        Returns once this mirror has dropped it (or after 5 s)."""
        await self._save_history(path)
        await delete_entry(self.client, self._path, path, what)
        with anyio.move_on_after(5):
            # a mirror signals no deletion: poll
            while (e := self.follow(path, create=False)) is not None and e.value is not NotGiven:  # noqa: ASYNC110
                await anyio.sleep(0.01)

    async def _save_history(self, path):
        if self.HISTORY_KIND is None:
            return
        e = self.follow(path, create=False)
        if e is not None and isinstance(e.value, dict):
            await record(self.client, self.HISTORY_KIND, path, e.value)
