"""`PauseRoot`: a runner's mirror of the pauses of its jobs (one watch
per runner root, on ``.distkv pause`` + the root's subpath).

Every value that arrives is filed as it is (garbage included: see
`_pause`); a change is passed on with its path (the runner wakes the
scheduler for that job, or for every job when the path is above jobs).
Nothing here raises for what the store holds.
"""

import weakref
from collections.abc import Callable
from typing import Any

from distkv.obj import ClientEntry
from moat.util import Path

from distkv_ext.codekit.store.mirror import StoreRoot

from ._layout import PAUSE_PREFIX, split_job_path
from ._pause import is_paused, pause_of

__all__ = ["PauseRoot"]


class _PauseEntry(ClientEntry):
    """One node of the pause subtree: tells its root of a changed value."""

    @classmethod
    def child_type(cls, name: Any) -> type["_PauseEntry"]:
        return _PauseEntry

    async def set_value(self, value: Any) -> None:
        await super().set_value(value)
        self.root.pause_changed(tuple(self.subpath), value)


class PauseRoot(StoreRoot):
    """The pauses below ``.distkv pause`` + a runner's subpath (see the
    module doc).  ``why(job)`` says whether the job at ``job`` (its path
    below the runner's subpath) is paused, in words."""

    CFG = "runner"
    _base: tuple[Any, ...] = ()

    @classmethod
    def child_type(cls, name: Any) -> type[_PauseEntry]:
        return _PauseEntry

    @classmethod
    async def open(
        cls,
        client: Any,
        subpath: tuple[Any, ...],
        on_change: Callable[[tuple[Any, ...]], None],
        prefix: Path = PAUSE_PREFIX,
    ) -> "PauseRoot":
        """The (shared, per client and subpath) mirror of the pauses at
        ``prefix`` + ``subpath``, loaded; ``on_change(path)`` (a bound
        method, held weakly) is called for each change, with the path
        (below ``subpath``) whose value changed: a job's, or one above
        jobs (a group pause: every job below it is concerned)."""
        root: PauseRoot = await cls.as_handler(client, cfg={"pause": prefix}, key="pause", subpath=subpath)
        root._base = tuple(subpath)
        root._listeners.append(weakref.WeakMethod(on_change))
        return root

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.values: dict[tuple[Any, ...], Any] = {}  # path below the subpath -> stored value
        self._listeners: list[weakref.WeakMethod[Callable[[tuple[Any, ...]], None]]] = []

    async def set_value(self, value: Any) -> None:  # the value at the subpath itself
        await super().set_value(value)
        self.pause_changed((), value)

    def pause_changed(self, path: tuple[Any, ...], value: Any) -> None:
        """File a changed value; tell the listeners (``path``: below the subpath)."""
        if is_paused(value):
            self.values[path] = value
        else:
            self.values.pop(path, None)
        for ref in list(self._listeners):
            listener = ref()
            if listener is None:
                self._listeners.remove(ref)
            else:
                listener(path)

    def why(self, job: tuple[Any, ...]) -> str | None:
        """Is the job at ``job`` (below the runner's subpath) paused?  In
        words (`_pause.pause_reason`), or None."""
        if not self.values:
            return None
        full = self._base + tuple(job)
        parts = split_job_path(full)
        if parts is None:  # not a job's path: only the pauses at or below the subpath count
            return pause_of(self.values, tuple(job))
        group_len = len(full) - len(parts[3])  # the group's subpath ("any", GROUP) ...
        rel = {}
        for p, v in self.values.items():
            f = self._base + p
            if len(f) >= group_len and f[:group_len] == full[:group_len]:
                rel[f[group_len:]] = v
            elif len(f) < group_len and f == full[: len(f)]:
                rel[()] = v  # a pause above the group (written by hand): the whole group
        return pause_of(rel, parts[3])

    def __repr__(self) -> str:
        return f"<PauseRoot {Path.build(self._base)}>"
