"""YAML as a deploy directory uses it: the values, and the line each came from.

Values are loaded as `moat.util.yload` loads them (ruyaml's safe loader,
which DistKV uses for its own files); the same text is also composed
into ruyaml's node tree, which knows where every key and item starts,
so that a problem names the line of the setting (``jobs.yaml:9: job 2
(heating.report): repeat must be a finite number, not inf``).
"""

from collections.abc import Callable
from typing import Any

from moat.util import yload
from ruyaml import YAML
from ruyaml.error import MarkedYAMLError
from ruyaml.nodes import MappingNode, ScalarNode, SequenceNode

from distkv_ext.codekit.core.errors import InputRefused

__all__ = ["load", "LineOf"]

#: ``line_of(*keys)``: the 1-based line of the value at ``keys`` (mapping
#: keys and list indices), or of the nearest enclosing one that is known.
LineOf = Callable[..., int]


def _line_of(root: Any, offset: int) -> LineOf:
    def line_of(*keys: Any) -> int:
        node, line = root, (root.start_mark.line if root is not None else 0)
        for k in keys:
            nxt = None
            if isinstance(node, MappingNode):
                for knode, vnode in node.value:
                    if isinstance(knode, ScalarNode) and knode.value == str(k):
                        nxt, line = vnode, knode.start_mark.line
                        break
            elif isinstance(node, SequenceNode) and isinstance(k, int) and 0 <= k < len(node.value):
                nxt = node.value[k]
                line = nxt.start_mark.line
            if nxt is None:
                break
            node = nxt
        return line + 1 + offset

    return line_of


def load(text: str, filename: str, offset: int = 0) -> tuple[Any, LineOf]:
    """``(value, line_of)`` of the YAML ``text`` (``offset``: lines of the
    file before it).  Text that is not YAML raises `InputRefused`: ``FILE:LINE:
    not YAML: PROBLEM``."""
    try:
        value = yload(text)
        root = YAML(typ="safe").compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1 + offset}" if mark is not None else filename
        what = exc.problem or exc.context or type(exc).__name__
        raise InputRefused(f"{where}: not YAML: {what}") from None
    except Exception as exc:  # ruyaml's other errors have no useful common base
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputRefused(f"{filename}: not YAML: {text}") from None
    return value, _line_of(root, offset)
