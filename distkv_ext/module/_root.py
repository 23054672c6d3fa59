"""`ModuleRoot` / `ModuleEntry`: the stored modules, served by the import hook."""

import logging
import sys
from contextlib import asynccontextmanager

from distkv.obj import ClientEntry
from moat.util import NotGiven, Path

from distkv_ext.codekit.core.depgraph import closure, dependents
from distkv_ext.codekit.core.errors import InputRefused, NotTrusted
from distkv_ext.codekit.core.paths import as_path, dotted
from distkv_ext.codekit.core.signing import check_trusted, with_signature
from distkv_ext.codekit.store.mirror import StoreRoot

from . import _importer
from ._value import check_requires_acyclic, check_stored, module_value

logger = logging.getLogger(__name__)

__all__ = ["ModuleRoot", "ModuleEntry"]


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


class ModuleRoot(StoreRoot):
    """The stored modules (``.distkv code module``).

    ``m = await ModuleRoot.as_handler(client)`` returns once the tree is
    loaded; while it runs, ``import a.b`` (anywhere in this process) finds
    the module stored at ``.distkv code module a b``, loading it (and its
    ``requires``, first) only when it is first imported.

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

    # --- for the import hook ---

    def _node(self, name):
        try:
            path = Path.build(name.split("."))
        except Exception:
            return None
        return self.follow(path, create=False) if len(path) else None

    def value_of(self, name):
        """The stored value (a mapping) of the module ``name``, or None."""
        node = self._node(name)
        v = None if node is None else node.value
        return v if isinstance(v, dict) else None

    def kind_of(self, name):
        """``"module"``, ``"namespace"`` or None: what is stored at ``name``."""
        node = self._node(name)
        if node is None:
            return None
        if node.value is not NotGiven and node.value is not None:
            return "module"  # (if it is no module's value, importing it says why)
        if any(True for _ in node.all_children):
            return "namespace"
        return None

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
        """{module name: requires} of every stored module."""
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
        check_requires_acyclic(self.requires_graph(), dotted(path), value["requires"])
        old = self.follow(path, create=False)
        carry = [old.value.get("sig")] if old is not None and isinstance(old.value, dict) else []
        value = with_signature("module", path, value, signing_key, carry)
        return await self.write(path, value)

    async def remove(self, path):
        """Delete a stored module; `NotFound` if there is none."""
        await self.remove_entry(as_path(path, "module"), "module")

    def needs(self, name):
        """Every module that loading ``name`` loads (requires, transitively)."""
        return closure(self.requires_graph(), [name]) - {name}
