"""Python modules stored in DistKV (``.distkv code module``).

Public API (the names of DistKV 0.65's ``distkv.code``)::

    m = await ModuleRoot.as_handler(client)   # reads no module yet
    await m.add("util.pid", code="def step(e): return 0.5 * e", requires=())
    await m.fetch("util.pid")   # (what a CodeRoot does for a procedure's needs)
    import util.pid        # served from the store, compiled on first import

See `ModuleRoot` for fetching, loading order, reload and what happens to
objects of an old version.
"""

from distkv_ext.codekit.core.errors import CompileError, InputRefused, NotFound

from ._importer import Deferred, StoredModuleFinder, defer, load_requires, uses_stored_modules
from ._ops import (
    DEFAULT_PREFIX,
    check_modules,
    get_module,
    list_modules,
    module_graph,
    needs_of,
    remove_module,
    requires_of,
    revert_module,
    snapshot,
    store_module,
)
from ._root import ModuleEntry, ModuleRoot
from ._value import check_requires_acyclic, module_value

__all__ = [
    "ModuleRoot",
    "ModuleEntry",
    "StoredModuleFinder",
    "load_requires",
    "uses_stored_modules",
    "Deferred",
    "defer",
    "module_value",
    "check_requires_acyclic",
    "get_module",
    "list_modules",
    "store_module",
    "remove_module",
    "revert_module",
    "module_graph",
    "snapshot",
    "needs_of",
    "requires_of",
    "check_modules",
    "DEFAULT_PREFIX",
    "CompileError",
    "InputRefused",
    "NotFound",
]
