"""`ModuleRoot` / `ModuleEntry`: the stored modules, served by the import hook."""

import logging
import sys
from contextlib import asynccontextmanager

import anyio
from distkv.obj import ClientEntry
from moat.util import NotGiven, Path

from distkv_ext.codekit.core.depgraph import closure, dependents, static_imports
from distkv_ext.codekit.core.errors import InputRefused, NotTrusted
from distkv_ext.codekit.core.paths import as_path, dotted
from distkv_ext.codekit.core.signing import check_trusted, with_signature
from distkv_ext.codekit.store.lazy import LazyRoot

from . import _importer
from ._importer import UNKNOWN
from ._loopwait import LoopWaiter
from ._value import check_requires_acyclic, check_stored, module_value

logger = logging.getLogger(__name__)

__all__ = ["ModuleRoot", "ModuleEntry"]


def _key(name):
    """The path (a tuple) of module ``name`` below the root, or None for a
    name that is no module name (not text, empty parts)."""
    if not isinstance(name, str) or not name:
        return None
    parts = tuple(name.split("."))
    return parts if all(parts) else None


def _needs(value):
    """The module names a stored module or procedure ``value`` may need:
    its ``requires`` and the names its text imports (garbage: none)."""
    if not isinstance(value, dict):
        return set()
    req = value.get("requires") or ()
    names = {r for r in req if isinstance(r, str)} if isinstance(req, (list, tuple)) else set()
    code = value.get("code")
    if isinstance(code, str):
        names |= static_imports(code)
    return names


class ModuleEntry(ClientEntry):
    """One stored module: its text and ``requires``.  Compiled when first
    imported, not before (modules load on demand)."""

    @property
    def name(self):
        """The module's name (``"a.b"``)."""
        return dotted(self.subpath)

    @property
    def code(self):
        v = self.value
        return v.get("code") if isinstance(v, dict) else None

    @property
    def requires(self):
        v = self.value
        r = v.get("requires", ()) if isinstance(v, dict) else ()
        return tuple(r) if isinstance(r, (list, tuple)) else ()

    async def set_value(self, value):
        changed = value != self.value
        await super().set_value(value)
        if changed:
            self.root.invalidate(self.name)


class ModuleRoot(LazyRoot):
    """The stored modules (``.distkv code module``).

    ``m = await ModuleRoot.as_handler(client)`` returns at once: it reads
    no module then (it watches the tree without fetching it, see
    `LazyRoot`).  While it runs, ``import a.b`` finds the module stored at
    ``.distkv code module a b``, compiling and running it (and its
    ``requires``, first) only when it is first imported.

    Fetching: a module is fetched (one ``get``, and one for each package
    above it) when it is first needed, and from then on kept current by
    the watch.  ``await m.fetch("a.b")`` fetches ``a.b`` and everything it
    needs (its ``requires`` and the modules its text imports, theirs, in
    rounds); a `CodeRoot` does that for each procedure when it compiles it
    (`fetch_needs`), so its calls import from memory.  An import of a
    module not fetched yet fetches it on the spot from a worker thread
    (threaded procedures); the event loop's own thread cannot wait for the
    store, so there such an import starts the fetch and fails (stored
    code: with a `ModuleNotFoundError` saying so; the next import finds
    the module).

    Reload: when a stored module changes or is deleted, it, the modules
    below it and every loaded module that needs it (``requires`` or an
    import) are dropped from ``sys.modules``, so the next import or call
    runs the new code.  Objects made from the old version (instances,
    functions other code still holds) keep working with the old code;
    ``isinstance`` checks against a reloaded class fail for them.
    """

    CFG = "modules"
    HISTORY_KIND = "module"
    #: public keys (bytes) whose signature a module needs to be imported; None: any
    trusted = None

    def __init__(self, *a, trusted=None, **kw):
        super().__init__(*a, **kw)
        # trusted before the import hook serves anything (as_handler(..., trusted=KEYS))
        self.trust(trusted)
        self._imported = {}  # name -> set of names it needs
        self._listeners = []
        self._namespaces = set()  # namespace packages handed out
        self._wanted = set()  # names fetched with `fetch`: their changes fetch what they need
        self._waiter = LoopWaiter()  # (made in the event loop's thread)
        self.generation = 0

    @classmethod
    def child_type(cls, name):
        return ModuleEntry

    @classmethod
    def running_for(cls, client):
        """The handler that already serves ``client``'s stored modules to
        imports, or None; starts nothing (costs the server nothing)."""
        return _importer.root_of(client)

    @asynccontextmanager
    async def run(self):
        async with super().run() as res:
            _importer.register(self)
            try:
                yield res
            finally:
                _importer.unregister(self)
                self.unload_all()

    # --- fetching ---

    async def fetch(self, *names):
        """Fetch the modules ``names`` (unless known), the packages above
        them and, transitively, what they need (``requires``, imported
        names), one round of concurrent ``get`` requests per level.  Names
        that are not stored are remembered as such (the watch tells when
        they appear).  Garbage in the store (no mapping, ``requires`` that
        is no list, a cycle) ends nothing here: importing says what is wrong."""
        seen = set()
        todo = {n for n in names if _key(n) is not None}
        while todo:
            self._wanted |= todo
            seen |= todo
            keys = set()
            for n in todo:
                k = _key(n)
                keys |= {k[:i] for i in range(1, len(k) + 1)}
            await self.fetch_entries(keys)
            # an empty name whose import would reach us: a namespace package?
            ask = [k for k in keys if self.lookup(".".join(k)) == UNKNOWN and not _importer.installed(k[0])]
            if ask:
                async with anyio.create_task_group() as tg:
                    for k in ask:
                        tg.start_soon(self.fetch_below, k)
            nxt = set()
            for n in todo:
                nxt |= _needs(self.value_of(n))
            todo = {n for n in nxt - seen if _key(n) is not None}

    async def fetch_needs(self, value):
        """`fetch` what a stored procedure or module ``value`` needs."""
        await self.fetch(*_needs(value))

    def fetch_soon(self, name):
        """Start fetching ``name`` in the background (see `fetch`)."""
        tg = getattr(self, "_tg", None)
        if tg is not None:
            tg.start_soon(self._fetch_quietly, name)

    async def _fetch_quietly(self, name):
        try:
            await self.fetch(name)
        except Exception as exc:  # the import that needs it fails again, naming it
            logger.warning("Could not fetch stored module %s: %r", name, exc)

    def fetch_now(self, name):
        """For the import hook: `fetch` ``name`` and return `lookup` of it.
        In a worker thread of the event loop, wait for it (for at most
        `LoopWaiter.timeout`); in the loop's own thread (which cannot
        wait) start it and return `UNKNOWN`."""
        if self._waiter.in_loop_thread():
            self.fetch_soon(name)
            return UNKNOWN
        if not self._waiter.wait(self.fetch, name, what=f"the stored module {name}"):
            return UNKNOWN
        return self.lookup(name)

    async def _changed(self, key, value, chain):
        # Before a change is applied (and `wait_chain` returns): a module
        # stored now is importable, so the packages above it are fetched
        # (once: are they modules or namespaces?); a changed module that was
        # wanted may need other modules now: they are fetched before the
        # change drops it, so that the re-import finds them.
        name = ".".join(str(k) for k in key)
        try:
            if value is not NotGiven:
                await self.fetch_entries(key[:i] for i in range(1, len(key)))
            if name in self._wanted and isinstance(value, dict):
                await self.fetch_needs(value)
        except Exception as exc:
            logger.warning("Could not fetch what module %s needs now: %r", name, exc)
        await super()._changed(key, value, chain)

    # --- for the import hook ---

    def _node(self, name):
        key = _key(name)
        try:
            path = Path.build(key) if key else None
        except Exception:
            return None
        return self.follow(path, create=False) if path else None

    def value_of(self, name):
        """The stored value (a mapping) of the module ``name``, or None (also
        while it is not fetched)."""
        node = self._node(name)
        v = None if node is None else node.value
        return v if isinstance(v, dict) else None

    def lookup(self, name):
        """``"module"``, ``"namespace"``, None (nothing stored there) or
        `UNKNOWN` (not fetched yet): what is stored at ``name``."""
        key = _key(name)
        if key is None:
            return None
        node = self._node(name)
        if node is not None and node.value is not NotGiven and node.value is not None:
            return "module"  # (if it is no module's value, importing it says why)
        if not self.known(key):
            return UNKNOWN
        below = self.below_known(key)
        if below is None:
            return UNKNOWN
        return "namespace" if below else None

    def kind_of(self, name):
        """``"module"``, ``"namespace"`` or None: what is stored at ``name``,
        as far as known now; a name not fetched yet is None, and its fetch
        starts (see `fetch_soon`)."""
        kind = self.lookup(name)
        if kind == UNKNOWN:
            self.fetch_soon(name)
            return None
        return kind

    def module_source(self, name):
        """(text, requires) of a stored module; with trusted keys (`trust`),
        an `ImportError` if it is not signed by one of them."""
        node = self._node(name)
        if node is None or node.value is NotGiven or node.value is None:
            raise ModuleNotFoundError(f"no module stored at {name}", name=name)
        try:
            check_stored(node.value)
        except InputRefused as exc:
            raise ImportError(f"stored module {name}: {exc}", name=name) from None
        if self.trusted is not None:
            try:
                check_trusted("module", node.subpath, node.value, self.trusted, f"module {name}")
            except NotTrusted as exc:
                raise ImportError(str(exc), name=name) from exc
        return node.code, node.requires

    def trust(self, keys):
        """From now on, import only modules signed by one of ``keys`` (32-byte
        Ed25519 public keys); None: any.  Modules loaded before stay loaded."""
        self.trusted = None if keys is None else frozenset(keys)

    def loaded(self, name, needs):
        self._imported[name] = set(needs)

    def note_namespace(self, name):
        self._namespaces.add(name)

    def unloaded(self, name):
        self._imported.pop(name, None)

    def invalidate(self, name):
        """Drop ``name``, its submodules and its loaded dependents from
        ``sys.modules`` (see the class docstring)."""
        if not self._imported:
            return
        roots = {n for n in self._imported if n == name or n.startswith(name + ".")}
        roots.add(name)
        victims = set()
        for r in roots:
            victims |= {r} | dependents(self._imported, r)
        victims &= set(self._imported) | {name}
        for v in sorted(victims, reverse=True):
            self._drop(v)
        if victims:
            self.generation += 1
            logger.debug("Invalidated %s (changed: %s)", sorted(victims), name)
            for cb in list(self._listeners):
                try:
                    cb(victims)
                except Exception:
                    logger.exception("module change listener %r failed", cb)

    def add_listener(self, callback):
        """Call ``callback(names)`` (sync) with the set of module names
        dropped whenever stored modules change; returns a remover."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _drop(self, name):
        self._imported.pop(name, None)
        mod = sys.modules.get(name)
        if mod is None or not _importer.is_ours(mod):
            return
        del sys.modules[name]
        parent, _, last = name.rpartition(".")
        if parent and parent in sys.modules:
            try:
                delattr(sys.modules[parent], last)
            except AttributeError:
                pass

    def unload_all(self):
        """Drop every module this handler loaded, and the namespace
        packages above them, from ``sys.modules``."""
        names = set(self._imported) | self._namespaces
        self._namespaces = set()
        for name in sorted(names, reverse=True):
            self._drop(name)

    def load_requires(self, requires, who):
        """Import ``requires`` in order on behalf of ``who`` (see `_importer`)."""
        _importer.load_requires(requires, who)

    # --- changing the store ---

    def requires_graph(self):
        """{module name: requires} of every stored module known here (fetched,
        or changed since the handler started: see `fetch`)."""
        return {e.name: list(e.requires) for e in self.all_children if e.code is not None}

    async def add(self, path, code=None, requires=(), *, info=None, signing_key=None):
        """Check and store a module; return when this handler has it.

        Refused (`CompileError` / `InputRefused`, nothing written): code
        that does not compile, and ``requires`` that would close a cycle.
        ``code=None`` removes the module.  ``signing_key``: a `SigningKey`
        to sign it with; without one, the stored signature is kept if it is
        still valid.
        """
        path = as_path(path, "module")
        if code is None:
            return await self.remove(path)
        value = module_value(path, code, requires=requires, info=info)
        # every module a cycle through this one could pass is among these
        await self.fetch(dotted(path), *value["requires"])
        check_requires_acyclic(self.requires_graph(), dotted(path), value["requires"])
        old = self.follow(path, create=False)
        carry = [old.value.get("sig")] if old is not None and isinstance(old.value, dict) else []
        value = with_signature("module", path, value, signing_key, carry)
        return await self.write(path, value)

    async def remove(self, path):
        """Delete a stored module; `NotFound` if there is none."""
        path = as_path(path, "module")
        await self.fetch_entry(path)  # (its history records what it was)
        await self.remove_entry(path, "module")

    def needs(self, name):
        """Every module that loading ``name`` loads (requires, transitively),
        of those known here (after ``await fetch(name)``: all)."""
        return closure(self.requires_graph(), [name]) - {name}
