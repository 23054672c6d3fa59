"""The stored form of a module (DistKV 0.65's layout: ``{code, requires}``)."""

from distkv_ext.codekit.core.checks import mapping, module_name, name_list, one_line
from distkv_ext.codekit.core.compiler import compile_module_code
from distkv_ext.codekit.core.depgraph import find_cycle
from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.paths import dotted, normalize_requires

__all__ = ["module_value", "check_stored", "check_requires_acyclic"]


def module_value(path, code, *, requires=(), info=None):
    """Check (compile) a module; return the dict to store.

    Raises `CompileError` / `InputRefused` (also for a path that ``import``
    could not find, such as ``a-b``); nothing is written by this.
    """
    module_name(path)  # refuses a name that `import` could not find (a-b, a.1, a.class)
    name = dotted(path)
    compile_module_code(code, name)
    requires = normalize_requires(requires)
    if name in requires:
        raise InputRefused(f"module {name} cannot require itself")
    value = {"code": code, "requires": requires}
    if info is not None:
        value["info"] = one_line(info, "info")
    return value


def check_stored(value):
    """Check the shape of a stored module (written by anyone, with any
    client) before it is imported: a mapping with ``code`` and
    ``requires`` a list of module names (absent or null: none).  Raises
    `InputRefused` naming what is wrong; the compiler checks the text."""
    mapping(value)
    if "code" not in value:
        raise InputRefused("stored value has no 'code'")
    if value.get("requires") is not None:
        name_list(value["requires"], "'requires'", module_name)


def check_requires_acyclic(graph, name, requires):
    """Refuse (`InputRefused`) ``requires`` for ``name`` that would close a
    cycle in ``graph`` ({module: requires}); the message names the cycle."""
    g = {k: list(v) for k, v in graph.items()}
    g[name] = list(requires)
    cyc = find_cycle(g, start=name)
    if cyc:
        raise InputRefused(f"requires of {name} would close a cycle: {' -> '.join(cyc)}")
