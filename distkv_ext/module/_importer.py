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

Loading on demand: a `CodeRoot` does not start the module handler until a
procedure needs stored modules (`uses_stored_modules`: it ``requires``
one, or imports a name that nothing installed provides).  For imports
that no text shows (``importlib.import_module(name)``), a handler
registers a `Deferred` loader: the first import of a name that nothing
else finds, made by stored code, starts the module handler and fetches
that module.

Fetching on demand: a `ModuleRoot` holds only the modules fetched so far
(see its doc).  An import of a name it does not know yet fetches it: at
once in a worker thread (threaded procedures), in the background from
the event loop's own thread (which cannot wait for the store; an import
by stored code fails then with a message that says so, and the next one
finds the module).  The fetch is for the whole dotted name being
imported (read from CPython's import frames), not just the package that
Python looks up first.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from distkv_ext.codekit.core.compiler import compile_module_code, source_name
from distkv_ext.codekit.core.depgraph import static_imports
from distkv_ext.codekit.core.errors import CompileError, InputRefused, MissingModule

from ._loopwait import LoopWaiter

__all__ = [
    "register",
    "unregister",
    "load_requires",
    "is_ours",
    "StoredModuleFinder",
    "Deferred",
    "defer",
    "root_of",
    "uses_stored_modules",
]

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ._root import ModuleRoot  # (imports this module)

#: `ModuleRoot.lookup`'s answer for a name it has not fetched yet
UNKNOWN = "unknown"

_roots: list["ModuleRoot"] = []
_deferred: list["Deferred"] = []
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
            except InputRefused as exc:  # no text
                raise ImportError(f"stored module {name}: {exc}", name=name) from None
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


class Deferred:
    """Stored modules that a handler loads when first needed.

    ``load``: an async function that loads them (starts the `ModuleRoot`);
    ``load_soon``: a sync function that starts ``load`` in the background.
    Register with `defer`; `StoredModuleFinder` calls them for an import
    by stored code that nothing else finds (see the module doc).
    """

    def __init__(self, load: Callable[[str], Awaitable[Any]], load_soon: Callable[[str], None]) -> None:
        self.load = load
        self.load_soon = load_soon
        self.done = False
        self.waiter = LoopWaiter()  # made in the event loop's thread

    def fetch(self, fullname: str) -> None:
        """Load now (a worker thread of the loop: see `LoopWaiter`) or start
        loading (the loop's own thread: then raise `ModuleNotFoundError`
        saying so); ``load`` and ``load_soon`` get the name being imported."""
        if not self.waiter.in_loop_thread():
            self.waiter.wait(self.load, importing(fullname), what=f"the stored module {fullname}")
            return
        self.load_soon(importing(fullname))
        raise ModuleNotFoundError(
            f"No module named {fullname!r}: the stored modules were not loaded yet; loading them"
            " now (a procedure that imports stored modules by a computed name should list them"
            " in its requires)",
            name=fullname,
        )


def defer(d: Deferred) -> Callable[[], None]:
    """Register `Deferred` loader ``d`` (installs the finder); returns a
    function that unregisters it."""
    with _lock:
        _deferred.append(d)
        if _finder not in sys.meta_path:
            sys.meta_path.append(_finder)

    def undefer() -> None:
        with _lock:
            if d in _deferred:
                _deferred.remove(d)

    return undefer


def importing(fullname: str) -> str:
    """The whole dotted name whose import asks for ``fullname`` (Python
    finds ``a`` before ``a.b.c``): read from CPython's ``_find_and_load``
    frames; ``fullname`` when there is none."""
    best = fullname
    f: Any = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "_find_and_load":
            name = f.f_locals.get("name")
            if isinstance(name, str) and name.startswith(best + "."):
                best = name
        f = f.f_back
    return best


def _by_stored_code() -> bool:
    """Is stored code (a procedure or module) importing?"""
    f: Any = sys._getframe(2)
    while f is not None:
        if f.f_code.co_filename.startswith("<distkv:"):
            return True
        f = f.f_back
    return False


def installed(name: str) -> bool:
    """Does something other than the store provide top-level module ``name``?"""
    if name in sys.modules:
        return not is_ours(sys.modules[name])
    for finder in list(sys.meta_path):
        if finder is _finder or not hasattr(finder, "find_spec"):
            continue
        try:
            if finder.find_spec(name, None) is not None:
                return True
        except Exception:  # a finder that cannot answer: not there
            continue
    return False


def uses_stored_modules(code: object, requires: object = ()) -> bool:
    """Might ``code`` (a procedure's text) need stored modules?  True when
    ``requires`` names any, or the text imports a top-level name that
    nothing installed provides (so only the store could)."""
    if isinstance(requires, (list, tuple)) and requires:
        return True
    if not isinstance(code, str):
        return False
    tops = {n.split(".", 1)[0] for n in static_imports(code)}
    return any(not installed(t) for t in sorted(tops))


class StoredModuleFinder(importlib.abc.MetaPathFinder):
    """Finds modules in the registered `ModuleRoot` handlers."""

    def find_spec(self, fullname, path=None, target=None):
        spec, unknown = self._find(fullname)
        if spec is None:
            with _lock:
                pending = [d for d in _deferred if not d.done]
            if pending and _by_stored_code():
                for d in pending:
                    d.fetch(fullname)
                spec, unknown = self._find(fullname)
        if spec is None and unknown and _by_stored_code():
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: it was not fetched from the store yet; fetching it now"
                " (a procedure that imports stored modules by a computed name should list them in its"
                " requires)",
                name=fullname,
            )
        return spec

    def _find(self, fullname):
        """(spec or None, whether a handler does not know ``fullname`` yet)."""
        with _lock:
            roots = list(_roots)
        unknown = False
        for root in roots:
            kind = root.lookup(fullname)
            if kind == UNKNOWN:
                kind = root.fetch_now(importing(fullname))
                if kind == UNKNOWN:
                    unknown = True
                    continue
                kind = root.lookup(fullname)
            if kind == "module":
                spec = importlib.util.spec_from_loader(
                    fullname,
                    _Loader(root),
                    origin=source_name("module", fullname),
                    is_package=True,
                )
                return spec, False
            if kind == "namespace":
                spec = importlib.machinery.ModuleSpec(
                    fullname, None, origin=source_name("namespace", fullname), is_package=True
                )
                spec.submodule_search_locations = []
                root.note_namespace(fullname)
                return spec, False
        return None, unknown

    def invalidate_caches(self):
        pass


_finder = StoredModuleFinder()


def is_ours(module):
    """Was ``module`` made by this import hook (a stored module or one of
    its namespace parents)?"""
    spec = getattr(module, "__spec__", None)
    return str(getattr(spec, "origin", None) or "").startswith("<distkv:")


def root_of(client):
    """The registered `ModuleRoot` of ``client``, or None."""
    with _lock:
        for root in _roots:
            if root.client is client:
                return root
    return None


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
