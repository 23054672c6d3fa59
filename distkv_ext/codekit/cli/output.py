"""Output: YAML (default), JSON, tables, and highlighting on a terminal.

Highlighting (pygments) happens only when the stream is a terminal and
``NO_COLOR`` is not set; pipes and files always get plain text.
"""

import datetime
import json
import os
import sys

import asyncclick as click
from moat.util import Path, yformat

__all__ = [
    "output_option",
    "emit",
    "table",
    "highlight",
    "use_color",
    "stdout_of",
    "pick_format",
]

FORMATS = ("yaml", "json", "table")


def output_option(*formats, default=None):
    """``-o/--output FORMAT``.  Without ``default``: a table on a terminal
    when "table" is offered, else YAML."""
    formats = formats or ("yaml", "json")

    def deco(fn):
        return click.option(
            "-o",
            "--output",
            "output",
            type=click.Choice(formats),
            default=default,
            help=f"Output format ({', '.join(formats)}).",
        )(fn)

    return deco


def stdout_of(obj):
    return getattr(obj, "stdout", None) or sys.stdout


def use_color(stream):
    """Highlight for this stream?  Only on a terminal, never with NO_COLOR."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def pick_format(output, stream, table_ok=False):
    """The explicit ``-o`` format, else a table on a terminal (where
    offered), else YAML."""
    if output:
        return output
    if table_ok and _isatty(stream):
        return "table"
    return "yaml"


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def highlight(text, lexer, stream):
    """``text`` highlighted with the pygments lexer named ``lexer``
    ("python", "diff", "yaml") when `use_color` (stream), else unchanged."""
    if not use_color(stream):
        return text
    # lazy: pygments costs ~10 ms, paid only when highlighting on a terminal
    from pygments import highlight as hl
    from pygments.formatters import TerminalFormatter
    from pygments.lexers import get_lexer_by_name

    return hl(text, get_lexer_by_name(lexer), TerminalFormatter())


def _jsonable(x):
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, bytes):
        return x.decode("utf-8", errors="replace")
    if isinstance(x, (datetime.datetime, datetime.date)):
        return x.isoformat()
    return repr(x)


def emit(obj, data, output=None):
    """Print ``data`` as YAML (default) or JSON to the command's stdout."""
    stream = stdout_of(obj)
    data = _jsonable(data)
    if output == "json":
        print(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False), file=stream)
        return
    if isinstance(data, str):
        text = data  # a plain string prints as itself
    elif isinstance(data, (int, float, bool)) or data is None:
        text = json.dumps(data)  # 42, 1.5, true, null: YAML and JSON agree
    else:
        text = yformat(data, compact=False)
    print(highlight(text, "yaml", stream), end="" if text.endswith("\n") else "\n", file=stream)


def table(obj, headers, rows):
    """Print rows as a table with a header line, columns padded."""
    stream = stdout_of(obj)
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    head = fmt.format(*headers).rstrip()
    if use_color(stream):
        head = click.style(head, bold=True)
    print(head, file=stream)
    for r in rows:
        print(fmt.format(*r).rstrip(), file=stream)
