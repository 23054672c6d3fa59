"""The import hook that serves stored modules (a ``sys.meta_path`` finder).

Installed once, at the *end* of ``sys.meta_path``: modules installed on
the machine win over stored ones of the same name, so a stored module
can never shadow the standard library.  Each running `ModuleRoot`
registers itself; the first one that has a name serves it.

* A stored module is always a package (``__path__ = []``), so modules
  stored below it can be added at any time.
* A path with stored modules below it but no module of its own is a
  namespace package.
* Before a module's code runs, its ``requires`` are imported, in order.
  A required module that cannot be found is a `ModuleNotFoundError`
  that names the chain that needed it; a cycle of ``requires`` (only
  possible when written behind ``add``'s back) is an `ImportError`
  naming the cycle.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from typing import TYPE_CHECKING

from distkv_ext.codekit.core.compiler import compile_module_code, source_name
from distkv_ext.codekit.core.depgraph import static_imports
from distkv_ext.codekit.core.errors import CompileError, MissingModule

__all__ = ["register", "unregister", "load_requires", "is_ours", "StoredModuleFinder"]

if TYPE_CHECKING:
    from ._root import ModuleRoot  # (imports this module)

_roots: list["ModuleRoot"] = []
_lock = threading.Lock()
_tls = threading.local()


def _stack():
    st = getattr(_tls, "stack", None)
    if st is None:
        st = _tls.stack = []
    return st


def _chain(stack, last):
    return " -> ".join([*stack, last])


def _require(name, stack):
    if name in stack:
        raise ImportError(f"requires form a cycle: {_chain(stack[stack.index(name) :], name)}")
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or name
        if missing == name or name.startswith(missing + "."):
            who = stack[-1] if stack else "?"
            raise MissingModule(
                f"{who} requires module {name}, which is not stored (needed by {_chain(stack, name)})",
                name=name,
            ) from None
        raise


def load_requires(requires, who):
    """Import the modules in ``requires`` in order, on behalf of ``who``
    (e.g. ``"procedure heating.pump"``), for error messages."""
    stack = _stack()
    stack.append(who)
    try:
        for r in requires:
            _require(r, stack)
    finally:
        stack.pop()


class _Loader(importlib.abc.Loader):
    def __init__(self, root):
        self.root = root

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        name = module.__name__
        text, requires = self.root.module_source(name)
        stack = _stack()
        if name in stack:
            raise ImportError(f"requires form a cycle: {_chain(stack[stack.index(name) :], name)}")
        stack.append(name)
        try:
            for r in requires:
                _require(r, stack)
            try:
                code = compile_module_code(text, name)
            except CompileError as exc:
                raise ImportError(f"stored module {name} does not compile: {exc}", name=name) from exc
            self.root.loaded(name, set(requires) | static_imports(text))
            try:
                exec(code, module.__dict__)
            except BaseException:
                self.root.unloaded(name)
                raise
        finally:
            stack.pop()

    def get_source(self, name):
        return self.root.module_source(name)[0]


class StoredModuleFinder(importlib.abc.MetaPathFinder):
    """Finds modules in the registered `ModuleRoot` handlers."""

    def find_spec(self, fullname, path=None, target=None):
        with _lock:
            roots = list(_roots)
        for root in roots:
            kind = root.kind_of(fullname)
            if kind == "module":
                spec = importlib.util.spec_from_loader(
                    fullname,
                    _Loader(root),
                    origin=source_name("module", fullname),
                    is_package=True,
                )
                return spec
            if kind == "namespace":
                spec = importlib.machinery.ModuleSpec(
                    fullname, None, origin=source_name("namespace", fullname), is_package=True
                )
                spec.submodule_search_locations = []
                root.note_namespace(fullname)
                return spec
        return None

    def invalidate_caches(self):
        pass


_finder = StoredModuleFinder()


def is_ours(module):
    """Was ``module`` made by this import hook (a stored module or one of
    its namespace parents)?"""
    spec = getattr(module, "__spec__", None)
    return str(getattr(spec, "origin", None) or "").startswith("<distkv:")


def register(root):
    """Serve ``root``'s modules (installs the finder on first use)."""
    with _lock:
        if root not in _roots:
            _roots.append(root)
        if _finder not in sys.meta_path:
            sys.meta_path.append(_finder)


def unregister(root):
    with _lock:
        if root in _roots:
            _roots.remove(root)
