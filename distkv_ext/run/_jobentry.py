"""The base of a job's two entries (`RunnerEntry`, `StateEntry`): lean,
for groups of thousands of jobs.

DistKV's `AttrClientEntry` copies every field of a value it gets into an
instance attribute, so each entry held its fields twice (the value, and
an instance dict as large), and every `ClientEntry` makes an anyio.Lock
(with its deque) that a job's entry needs only when it is written.  Here
the fields are `_Field` descriptors that read the value, and the lock is
made on first use: 6.3 KB per job became 2.6 KB (in-process, 2,000 jobs).
"""

import functools
from typing import Any

import anyio
from distkv.obj import AttrClientEntry
from moat.util import NotGiven

__all__ = ["JobPath"]

#: A job's path below its group (the entry's subpath)
JobPath = tuple[Any, ...]


_NO_DEFAULT = object()


class _Field:
    """One of an entry's ``ATTRS``, read from its value.  A field set on
    the entry (to be saved) is kept aside (``_changed``) and wins until the
    next value arrives (`_JobEntry.set_value`), as DistKV's attributes did
    until it overwrote them.  A field the value lacks reads as the class's
    default (an AttributeError if there is none)."""

    __slots__ = ("name", "default")

    def __init__(self, name: str, default: Any) -> None:
        self.name, self.default = name, default

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            if self.default is _NO_DEFAULT:
                raise AttributeError(self.name)
            return self.default
        d = obj.__dict__
        if "_changed" in d and self.name in d["_changed"]:
            return d["_changed"][self.name]
        value = d.get("value")
        res = value.get(self.name, self.default) if isinstance(value, dict) else self.default
        if res is _NO_DEFAULT:
            raise AttributeError(self.name)
        return res

    def __set__(self, obj: Any, val: Any) -> None:
        obj.__dict__.setdefault("_changed", {})[self.name] = val

    def __delete__(self, obj: Any) -> None:
        obj.__dict__.get("_changed", {}).pop(self.name, None)


class _JobEntry(AttrClientEntry):
    """A runner or state entry: knows its job's path and name.

    Lean, for groups of thousands of jobs (two entries each): its ``ATTRS``
    are `_Field`s read from the value, and DistKV's per-entry lock (an
    anyio.Lock with its deque, ~760 B) is made on first use."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        for name in cls.ATTRS:
            default = _NO_DEFAULT
            for klass in cls.__mro__:
                if name in klass.__dict__:
                    default = klass.__dict__[name]
                    break
            if isinstance(default, _Field):
                default = default.default
            setattr(cls, name, _Field(name, default))

    def _init(self) -> None:
        # DistKV's `ClientEntry._init`, without making the lock
        self.chain = None
        self.value = NotGiven
        self._children: dict[Any, Any] = {}

    @functools.cached_property
    def _lock(self) -> anyio.Lock:
        return anyio.Lock()

    async def set_value(self, value: Any) -> None:
        """Take ``value`` as the entry's: every field reads from it now
        (fields set locally and not saved are dropped, as DistKV does)."""
        self.value = value
        self.__dict__.pop("_changed", None)

    @functools.cached_property
    def job_path(self) -> JobPath:
        """This job's path below its group, as a tuple (an entry keeps its
        place in the tree for life, so this is computed once)."""
        return tuple(self.subpath)

    @functools.cached_property
    def job_name(self) -> str:
        """This job's name within its group (for assignment and claims)."""
        return ".".join(str(x) for x in self.job_path)
