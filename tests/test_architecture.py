"""The house rules of ARCHITECTURE.md, checked on the source with `ast`.

* Arrows point one way: core <- store <- cli, core <- upstream; the
  features use codekit and each other's *public* package only, in the
  order module <- code <- run <- deploy, web; devtools sits on top.  Nothing
  in codekit imports a feature or devtools.
* No import cycles between our modules (module-level and function-level
  imports both count).
* A function-level import has a comment saying why (``# lazy: ...`` with
  what it saves, or ``# only now: ...``).
* click only in the CLI layer: ``client.py``, ``_cli_*.py``,
  ``codekit/cli``, ``devtools`` and the repairs of DistKV's and
  moat-util's own CLI.
* Every name in a feature's ``__all__`` exists and has a docstring that
  says what it does (constants: a ``#:`` comment above their definition).
"""

import ast
import importlib
import inspect
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "distkv_ext"

#: What each layer may import (of ours), besides itself.
ALLOWED = {
    "core": set(),
    "store": {"core"},
    "upstream": {"core"},
    "cli": {"core", "store", "upstream"},
    "shim": {"upstream"},  # codekit/distkv_main.py, kept for old unit files
    "module": {"core", "store", "upstream", "cli"},
    "code": {"core", "store", "upstream", "cli", "module"},
    "run": {"core", "store", "upstream", "cli", "module", "code"},
    "deploy": {"core", "store", "upstream", "cli", "module", "code", "run"},
    # the status page: a feature without a command of its own (`run web` calls it)
    "web": {"core", "store", "upstream", "module", "code", "run"},
    "client": {"upstream"},  # distkv_ext/client: DistKV's `distkv client`, repaired
    "devtools": {"core", "store", "upstream", "cli", "module", "code", "run", "deploy", "web"},
}
FEATURES = {"module", "code", "run", "deploy", "web"}
# code's CLI offers `code deploy`, and `code delete`/`revert` look at the jobs
# that run a procedure; run's offers `run web`: the CLI layer of a feature
# may use a later one
CLI_EXTRA = {"code": {"deploy", "run"}, "run": {"web"}}
#: the repairs of DistKV's and moat-util's click commands import click
CLICK_REPAIRS = {"distkv_ext.codekit.upstream.distkv", "distkv_ext.codekit.upstream.moat_util"}


def layer(mod):
    parts = mod.split(".")
    if parts[:2] != ["distkv_ext", "codekit"]:
        return parts[1]
    if len(parts) == 2:
        return "codekit"
    if parts[2] == "distkv_main":
        return "shim"
    return parts[2]


def is_cli_module(mod):
    last = mod.rsplit(".", 1)[-1]
    return last == "client" or last.startswith("_cli_") or layer(mod) in ("cli", "devtools")


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules():
    return {module_name(p): p for p in sorted(PKG.rglob("*.py")) if ".venv" not in p.parts}


MODULES = all_modules()


def resolve(mod, path, node):
    """The modules of ours that ``node`` (an import) imports."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
            base = pkg.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = []
        for a in node.names:
            sub = f"{target}.{a.name}"
            names.append(sub if sub in MODULES else target)
    return [n for n in names if n.startswith("distkv_ext.") and n in MODULES]


def _lead(lines, i):
    """Line ``i`` and the comments and imports right above it (a comment
    may explain a group of imports)."""
    res = [lines[i]]
    while i > 0:
        i -= 1
        s = lines[i].strip()
        if not (s.startswith(("#", "from ", "import ")) or s.endswith(",") or s == ")"):
            break
        res.append(s)
    return "\n".join(res)


def _type_only(tree):
    """ids of the imports under ``if TYPE_CHECKING:`` (never executed)."""
    res = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            res |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return res


def imports():
    """[(module, imported module, line, function-level?, comments above, node)]"""
    res = []
    for mod, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        inner = set()
        typing_only = _type_only(tree)
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner |= {id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                ctx = _lead(lines, node.lineno - 1)
                targets = resolve(mod, path, node)
                if not targets:  # third-party
                    targets = [None]
                for t in targets:
                    res.append((mod, t, node.lineno, id(node) in inner, ctx, id(node) in typing_only))
    return res


IMPORTS = imports()


def test_the_layout_is_what_the_test_knows():
    assert {layer(m) for m in MODULES} - {"codekit"} == set(ALLOWED), "a new top-level package: add it to ALLOWED"


def test_arrows_point_one_way():
    wrong = []
    for mod, target, line, _, _, _ in IMPORTS:
        if target is None:
            continue
        a, b = layer(mod), layer(target)
        if a == b or b == "codekit":
            continue
        ok = ALLOWED[a] | (CLI_EXTRA.get(a, set()) if is_cli_module(mod) else set())
        if b not in ok:
            wrong.append(f"{mod}:{line} imports {target} ({a} -> {b})")
    assert not wrong, "\n".join(wrong)


def test_features_use_each_others_public_api_only():
    private = [
        f"{mod}:{line} imports {target}"
        for mod, target, line, _, _, _ in IMPORTS
        if target is not None
        and layer(target) in FEATURES
        and layer(mod) != layer(target)
        and any(p.startswith("_") for p in target.split(".")[2:])
    ]
    assert not private, "\n".join(private)


def test_no_import_cycles():
    graph = {}
    for mod, target, _, _, _, typing_only in IMPORTS:
        if target is not None and target != mod and not typing_only:
            graph.setdefault(mod, set()).add(target)
    # Tarjan's strongly connected components
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not sccs, "import cycles: " + "; ".join(" <-> ".join(c) for c in sccs)


def test_function_level_imports_say_why():
    silent = [
        f"{mod}:{line}"
        for mod, _, line, inner, ctx, _ in IMPORTS
        if inner and "# lazy" not in ctx and "# only now" not in ctx
    ]
    assert not sorted(set(silent)), "function-level imports without a '# lazy: ...' reason: " + ", ".join(
        sorted(set(silent))
    )


def test_click_only_in_the_cli_layer():
    bad = []
    for mod, path in MODULES.items():
        if is_cli_module(mod) or mod in CLICK_REPAIRS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n.split(".")[0] in ("click", "asyncclick") for n in names):
                bad.append(f"{mod}:{node.lineno}")
    assert not bad, "click imported outside the CLI layer: " + ", ".join(bad)


def _documented_constant(module, name):
    """A constant is documented by a ``#:`` comment right above it."""
    for mod in [module, *(importlib.import_module(m) for m in _submodules(module))]:
        try:
            src = inspect.getsource(mod)
        except (OSError, TypeError):
            continue
        lines = src.splitlines()
        for i, line in enumerate(lines):
            if line.startswith((f"{name} =", f"{name}:")):
                # a '#:' comment above it, or above the block of constants it is in
                j = i
                while j > 0 and (lines[j - 1].startswith("#") or lines[j - 1][:1].isupper()):
                    j -= 1
                    if lines[j].startswith("#:"):
                        return True
    return False


def _submodules(module):
    base = pathlib.Path(module.__file__).parent
    return [f"{module.__name__}.{p.stem}" for p in base.glob("_*.py") if p.stem != "__init__"]


@pytest.mark.parametrize("feature", ["code", "module", "run", "deploy", "web"])
def test_public_names_have_docstrings(feature):
    mod = importlib.import_module(f"distkv_ext.{feature}")
    assert mod.__doc__ and mod.__doc__.strip()
    missing, undocumented = [], []
    for name in mod.__all__:
        if not hasattr(mod, name):
            missing.append(name)
            continue
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj):
            doc = inspect.getdoc(obj)
            own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not doc or not own or len(doc.split()) < 4:
                undocumented.append(name)
        elif not _documented_constant(mod, name):
            undocumented.append(name)
    assert not missing, f"in __all__ but not defined: {missing}"
    assert not undocumented, f"public names without a docstring (or '#:' comment) saying what they do: {undocumented}"
