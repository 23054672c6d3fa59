"""`StateRoot`: the mirror of a runner group's state entries."""

import weakref
from typing import Any, Protocol

import anyio

from distkv_ext.codekit.store.mirror import StoreRoot

from ._entry import StateEntry

__all__ = ["StateRoot"]


class StateListener(Protocol):
    """Who hears of changed states (the runner root)."""

    def state_changed(self, state: StateEntry, old_node: str | None) -> None:
        """``state`` changed; ``old_node``: the node it named before."""


class StateRoot(StoreRoot):
    """State entries of one runner group (``.distkv state ...``).

    Written only by runners, so that operators (who write runner entries)
    and runners never race on one entry.
    """

    CFG = "runner"
    _runner: "weakref.ref[StateListener] | None" = None

    @classmethod
    def child_type(cls, name: str) -> type[StateEntry]:
        return StateEntry

    @classmethod
    async def as_handler(
        cls,
        client: Any,
        cfg: Any = None,
        key: str = "state",
        subpath: tuple[Any, ...] = (),
        name: str | None = None,
        **kw: Any,
    ) -> "StateRoot":
        """The (shared, per client) mirror of the states at DistKV's
        ``runner.state`` + ``subpath``, loaded."""
        root: StateRoot = await super().as_handler(client, cfg=cfg, key=key, subpath=subpath, name=name, **kw)
        return root

    def set_runner(self, runner: StateListener) -> None:
        """Tell ``runner`` of changed states (held weakly)."""
        self._runner = weakref.ref(runner)

    @property
    def runner(self) -> StateListener | None:
        """The runner told of changed states, if it still exists."""
        return None if self._runner is None else self._runner()

    def state_changed(self, state: StateEntry, old_node: str | None) -> None:
        """Called by a `StateEntry` whose value changed."""
        r = self.runner
        if r is not None:
            r.state_changed(state, old_node)

    async def wait_entry(self, state: StateEntry, timeout: float = 5) -> None:
        """Wait until this mirror has seen the latest write of ``state``."""
        if state.chain is None:
            return
        with anyio.move_on_after(timeout):
            await self.wait_chain(state.chain)
