"""`StateRoot`: the mirror of a runner group's state entries."""

import weakref

import anyio

from distkv_ext.codekit.store.mirror import StoreRoot

from ._entry import StateEntry

__all__ = ["StateRoot"]


class StateRoot(StoreRoot):
    """State entries of one runner group (``.distkv state ...``).

    Written only by runners, so that operators (who write runner entries)
    and runners never race on one entry.
    """

    CFG = "runner"
    _runner = None

    @classmethod
    def child_type(cls, name):
        return StateEntry

    @classmethod
    async def as_handler(cls, client, cfg=None, key="state", subpath=(), name=None, **kw):
        return await super().as_handler(client, cfg=cfg, key=key, subpath=subpath, name=name, **kw)

    def set_runner(self, runner):
        self._runner = weakref.ref(runner)

    @property
    def runner(self):
        return None if self._runner is None else self._runner()

    def state_changed(self, state, old_node):
        r = self.runner
        if r is not None:
            r.state_changed(state, old_node)

    async def wait_entry(self, state, timeout=5):
        """Wait until this mirror has seen the latest write of ``state``."""
        if state.chain is None:
            return
        with anyio.move_on_after(timeout):
            await self.wait_chain(state.chain)
