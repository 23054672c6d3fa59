"""DistKV paths as this project spells them: ``a.b`` on the command line,
`moat.util.Path` in the store, ``a.b`` again for module names."""

from collections.abc import Iterable
from typing import Any, TypeAlias

from moat.util import P, Path

from .checks import module_name
from .errors import InputRefused

__all__ = ["as_path", "dotted", "normalize_requires", "PathSpec"]

#: What names an entry: ``"a.b"``, ``("a", "b")`` or a `Path`.  (moat.util
#: is untyped, so for mypy `Path` is Any and this union accepts anything.)
PathSpec: TypeAlias = Path | str | tuple[Any, ...] | list[Any]


def as_path(name: PathSpec, what: str = "entry") -> Path:
    """Return ``name`` (``"a.b"``, ``("a", "b")`` or a `Path`) as a `Path`.

    Strings use DistKV's path syntax (dots separate elements).  An empty
    path, or anything else, is refused with `InputRefused`.
    """
    if isinstance(name, Path):
        path = name
    elif isinstance(name, str):
        try:
            path = P(name)
        except Exception as exc:
            raise InputRefused(f"{name!r} is not a valid path: {exc}") from None
    elif isinstance(name, (tuple, list)):
        path = Path.build(name)
    else:
        raise InputRefused(f"{name!r} is not a path")
    if not len(path):
        raise InputRefused(f"a {what} needs a non-empty path")
    return path


def dotted(path: Iterable[object]) -> str:
    """The elements of ``path`` joined by dots: a module's name
    (``("util", "pid")`` -> ``"util.pid"``)."""
    return ".".join(str(x) for x in path)


def normalize_requires(requires: PathSpec | Iterable[PathSpec] | None) -> list[str]:
    """Return ``requires`` (one name, or an iterable of names; each a dotted
    string or a path) as a list of distinct dotted module names, in order.

    Anything that is not a module name that ``import`` could find (see
    `checks.module_name`), or not a list of them, is refused with
    `InputRefused`."""
    if isinstance(requires, (str, Path)):
        requires = [requires]
    elif requires is not None and not isinstance(requires, (list, tuple)):
        raise InputRefused(f"requires must be a list of module names, not {requires!r}")
    res: list[str] = []
    for req in requires or ():
        r = module_name(req)
        if r not in res:
            res.append(r)
    return res
