"""The part of DistKV's client that the store layer uses, as a type.

DistKV 0.65 ships no type information, so `distkv.client.Client` is Any
to mypy and any client object is accepted where `Client` is asked for.
The protocol still says which calls the store layer makes (and checks
how it makes them).  Their results are DistKV's ``attrdict`` messages:
untyped, hence Any.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from moat.util import Path

__all__ = ["Client"]


class Client(Protocol):
    """What the store layer needs of a `distkv.client.Client` (DistKV 0.65):
    its names, one-shot reads and writes, tree walks, watches, mirrors and
    shared helpers.  Not instantiated: a type for annotations only."""

    #: the client's random connection name (unique per connection)
    @property
    def name(self) -> str: ...

    #: the name it gives the server (host name unless configured); None
    #: until connected
    client_name: str | None

    #: the client's configuration (DistKV's, merged with ours)
    _cfg: Mapping[str, Any]

    def get(self, path: Path, *, nchain: int = ...) -> Awaitable[Any]:
        """The entry at ``path``: a reply with ``value`` (absent if there is
        none) and, with ``nchain``, its ``chain``."""

    def set(self, path: Path, value: Any = ..., *, chain: Any = ..., nchain: int = ...) -> Awaitable[Any]:
        """Store ``value``; with ``chain``, only if the entry is unchanged
        since (else the server raises ``ClientChainError``)."""

    def delete(self, path: Path, *, chain: Any = ..., nchain: int = ...) -> Awaitable[Any]:
        """Delete the entry at ``path`` (``chain`` as for `set`)."""

    def get_tree(self, path: Path, **kw: Any) -> AsyncIterator[Any]:
        """Yield every entry below ``path`` (``max_depth``, ``nchain``, ...)."""

    def watch(self, path: Path, **kw: Any) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        """A stream of the changes below ``path`` (``fetch=True``: the
        current entries first, then ``state="uptodate"``)."""

    def mirror(self, path: Path, *, root_type: Any = ..., **kw: Any) -> AbstractAsyncContextManager[Any]:
        """A live mirror (a `distkv.obj.ClientRoot` of ``root_type``) of the
        subtree at ``path``."""

    async def unique_helper(self, name: str, factory: Callable[[], Any]) -> Any:
        """The one object of this client named ``name``: ``factory()``'s
        async context, entered on the first call and shared after."""
