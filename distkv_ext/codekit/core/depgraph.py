"""Dependencies between stored modules and procedures.

A stored module or procedure *needs* a module when it lists it in
``requires`` or imports it (``import a.b``, ``from a.b import c``,
``from a import b`` where ``a.b`` is stored).  ``requires`` must not form
a cycle; imports may (Python allows that), so only ``requires`` is
checked for cycles.
"""

import ast
import functools
from collections.abc import Callable, Collection, Iterable, Mapping

__all__ = [
    "static_imports",
    "find_cycle",
    "closure",
    "dependents",
    "order",
    "needed_by",
    "render_tree",
    "Graph",
]

#: A dependency graph: {name: the names it needs}.  Values are read more
#: than once (membership tests, iteration), hence `Collection`.
Graph = Mapping[str, Collection[str]]


def static_imports(text: str) -> set[str]:
    """Names of the modules that ``text`` imports (absolute imports only).

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a
    module); parents of dotted names are included.  Text that does not
    parse yields nothing.
    """
    return set(_static_imports(text))


#: statement fields that hold statements (imports are statements only)
_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


@functools.lru_cache(maxsize=1024)
def _static_imports(text: str) -> frozenset[str]:
    # Cached: the same text is asked about when it is fetched, imported and
    # checked.  Only statements are visited (an expression holds no import),
    # a tenth of the nodes of `ast.walk`.
    if "import" not in text:
        return frozenset()
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return frozenset()
    res: set[str] = set()

    def add(name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            res.add(".".join(parts[:i]))

    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if not node.level and node.module:
                add(node.module)
                for a in node.names:
                    if a.name != "*":
                        res.add(f"{node.module}.{a.name}")
        else:
            for field in _BODIES:
                sub = getattr(node, field, None)
                if isinstance(sub, list):
                    todo.extend(sub)
    return frozenset(res)


def find_cycle(edges: Graph, start: str | None = None) -> list[str] | None:
    """A cycle in the graph ``edges`` ({name: iterable of names}), as a
    list ``[a, b, ..., a]``, or None.  With ``start``, only cycles through
    nodes reachable from it are searched."""
    WHITE, GREY, BLACK = 0, 1, 2
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = GREY
        stack.append(n)
        for m in edges.get(n, ()):
            c = color.get(m, WHITE)
            if c == GREY:
                return stack[stack.index(m) :] + [m]
            if c == WHITE:
                res = visit(m)
                if res:
                    return res
        stack.pop()
        color[n] = BLACK
        return None

    for n in [start] if start is not None else sorted(edges):
        if color.get(n, WHITE) == WHITE:
            res = visit(n)
            if res:
                return res
    return None


def closure(edges: Graph, names: Iterable[str]) -> set[str]:
    """All nodes reachable from ``names`` (``names`` included), as a set."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(edges.get(n, ()))
    return seen


def dependents(edges: Graph, name: str) -> set[str]:
    """Nodes that (transitively) need ``name``, not including it, as a set."""
    rev: dict[str, set[str]] = {}
    for a, bs in edges.items():
        for b in bs:
            rev.setdefault(b, set()).add(a)
    return closure(rev, [name]) - {name}


def needed_by(edges: Graph, name: str) -> list[str]:
    """Nodes that directly need ``name``, sorted."""
    return sorted(a for a, bs in edges.items() if name in bs)


def order(edges: Graph, names: Iterable[str]) -> list[str]:
    """``names`` and what they need, dependencies first (a topological
    order; members of a cycle in arbitrary order)."""
    res: list[str] = []
    seen: set[str] = set()

    def visit(n: str, path: set[str]) -> None:
        if n in seen or n in path:
            return
        path.add(n)
        for m in sorted(edges.get(n, ())):
            visit(m, path)
        path.discard(n)
        seen.add(n)
        res.append(n)

    for n in names:
        visit(n, set())
    return res


def render_tree(edges: Graph, roots: Iterable[str], label: Callable[[str], str] = str) -> str:
    """``roots`` and what they need, as an indented text tree (a string).

    A node already shown is marked ``(see above)``; a cycle ``(cycle)``.
    """
    lines: list[str] = []
    shown: set[str] = set()

    def walk(n: str, prefix: str, last: bool, path: frozenset[str], top: bool) -> None:
        mark = ""
        if n in path:
            mark = "  (cycle)"
        elif n in shown and edges.get(n):
            mark = "  (see above)"
        if top:
            lines.append(f"{label(n)}{mark}")
            child_prefix = ""
        else:
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label(n)}{mark}")
            child_prefix = prefix + ("    " if last else "│   ")
        if mark:
            return
        shown.add(n)
        kids = sorted(edges.get(n, ()))
        for i, m in enumerate(kids):
            walk(m, child_prefix, i == len(kids) - 1, path | {n}, False)

    for r in roots:
        walk(r, "", True, frozenset(), True)
    return "\n".join(lines) + ("\n" if lines else "")
