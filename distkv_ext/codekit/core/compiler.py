"""Turning stored text into code objects.

A *procedure* is a function body: the stored text is indented by four
spaces and put under ``def _proc(VARS):`` (``async def`` for async
procedures), exactly as DistKV 0.65 does, so that stored entries behave
the same under both.  A consequence (the same in DistKV): the lines of a
multi-line string literal are indented by four spaces too.

Unlike DistKV, line numbers are those of the user's text: a syntax error
names the line of the file that was stored, and a traceback through
stored code shows that line's number and source (via :mod:`linecache`,
under the file name ``<distkv:proc a.b>``).
"""

import ast
import builtins
import linecache
import re
from collections.abc import Iterable, Mapping, Sequence
from types import CodeType
from typing import Any

from moat.util import Path

from .checks import identifier
from .errors import CompileError, InputRefused

__all__ = [
    "Procedure",
    "compile_procedure",
    "compile_module_code",
    "check_variables",
    "source_name",
]

_INDENT = "    "


def source_name(kind: str, name: object) -> str:
    """The pseudo file name under which stored code of ``kind`` (``proc``,
    ``module``) named ``name`` is compiled: ``<distkv:KIND NAME>``; tracebacks
    and `linecache` know the code by it."""
    return f"<distkv:{kind} {name}>"


def _register_source(filename: str, text: str) -> None:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    # mtime None: linecache.checkcache never drops the entry
    linecache.cache[filename] = (len(text), None, lines, filename)


def check_variables(variables: Iterable[str]) -> list[str]:
    """Return ``variables`` as a list of valid, distinct parameter names.

    Raises `InputRefused` for a string (rather than a list of names), a
    name that is no identifier or is a keyword, and a name given twice.
    (Checked at run time: stored values arrive untyped.)
    """
    if isinstance(variables, str):
        raise InputRefused(f"variables must be a list of names, not the string {variables!r}")
    res: list[str] = []
    for v in variables:
        identifier(v)
        if v in res:
            raise InputRefused(f"variable {v!r} is named twice")
        res.append(v)
    return res


#: "... on line 3" / "(detected at line 4)" in a compiler message
_LINE_REF = re.compile(r"\b(on|at) line (\d+)")


def _syntax_error(name: object, exc: SyntaxError, shift_line: int, shift_col: bool) -> CompileError:
    lineno = exc.lineno
    if lineno is not None:
        lineno = max(1, lineno - shift_line)
    msg = exc.msg
    if shift_line:
        # the message may name a line too (the opening bracket, the 'if'
        # of a missing block, where a string ends): the user's number
        msg = _LINE_REF.sub(lambda m: f"{m[1]} line {max(1, int(m[2]) - shift_line)}", msg)
    text = exc.text
    if text is not None and shift_col and text.startswith(_INDENT):
        text = text[len(_INDENT) :]
    return CompileError(name, msg, lineno=lineno, text=text)


def _shift_to_user_text(tree: ast.Module) -> None:
    """Make positions those of the user's text: the header is line 1 and
    the body is indented by four columns; move both back."""
    ast.increment_lineno(tree, -1)
    n = len(_INDENT)
    for node in ast.walk(tree):
        pos: Any = node  # only some node classes have positions; ast.AST declares none
        if getattr(pos, "col_offset", None) is not None and pos.lineno >= 1:
            pos.col_offset = max(0, pos.col_offset - n)
        if getattr(pos, "end_col_offset", None) is not None and pos.end_lineno >= 1:
            pos.end_col_offset = max(0, pos.end_col_offset - n)


class Procedure:
    """A compiled procedure.

    Call it like a function: positional arguments fill ``variables`` in
    order, keyword arguments fill the rest of them by name; every other
    keyword argument becomes a global of the code.  ``defaults`` fill
    what the caller did not pass.  A variable without a value and
    without a default is a `TypeError` naming it.

    ``is_async``: ``True``: calling returns a coroutine; ``None``: the
    code runs right away (in the caller's thread); ``False``: the caller
    is expected to run it in a worker thread (see
    :meth:`distkv_ext.code.CodeEntry.__call__`).
    """

    __slots__ = ("name", "code", "variables", "is_async", "defaults", "filename")

    name: str
    code: CodeType
    variables: list[str]
    is_async: bool | None
    defaults: dict[str, Any]
    filename: str

    def __init__(
        self,
        name: str,
        code: CodeType,
        variables: list[str],
        is_async: bool | None = None,
        defaults: dict[str, Any] | None = None,
        filename: str = "",
    ) -> None:
        self.name = name
        self.code = code
        self.variables = variables
        self.is_async = is_async
        self.defaults = defaults or {}
        self.filename = filename

    def __repr__(self) -> str:
        return f"<Procedure {self.name} {self.variables}>"

    def bind(self, args: Sequence[Any], kw: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Return (positional args, globals dict) for one call, as
        described in the class doc; `TypeError` for too many positional
        arguments or a variable without a value."""
        if len(args) > len(self.variables):
            raise TypeError(f"{self.name} takes {len(self.variables)} positional arguments but {len(args)} were given")
        glob = dict(self.defaults)
        glob.update(kw)
        pos = list(args)
        for v in self.variables[len(pos) :]:
            try:
                pos.append(glob.pop(v))
            except KeyError:
                raise TypeError(f"{self.name} needs a value for variable {v!r}") from None
        glob["__builtins__"] = builtins
        glob["__name__"] = f"distkv.proc.{self.name}"
        return pos, glob

    def __call__(self, *args: Any, **kw: Any) -> Any:
        pos, glob = self.bind(args, kw)
        exec(self.code, glob)
        return glob["_proc"](*pos)


def compile_procedure(
    text: str,
    name: str | Path,
    *,
    variables: Iterable[str] = (),
    is_async: bool | None = None,
    defaults: dict[str, Any] | None = None,
) -> Procedure:
    """Compile a procedure body into a `Procedure`; register its text with
    `linecache` so that tracebacks show the stored lines.

    Raises `CompileError` (with the line number in ``text``) when it does
    not compile, `InputRefused` when ``text`` is no string, ``is_async``
    not true/false/None, ``defaults`` no dict, or a variable name invalid.
    (These are checked at run time too: stored values arrive untyped.)

    Args:
      text: the body (str)
      name: its path, for messages and the pseudo file name
      variables: parameter names
      is_async: None (sync), False (thread), True (async)
      defaults: default values of variables (copied)
    """
    if not isinstance(text, str):
        raise InputRefused(f"the code of {name} is {type(text).__name__}, not text")
    if is_async not in (None, True, False):
        raise InputRefused(f"is_async of {name} must be true, false or null, not {is_async!r}")
    names = check_variables(variables)
    if defaults is None:
        defaults = {}
    elif not isinstance(defaults, dict):
        raise InputRefused(f"the defaults of {name} must be a mapping")
    hdr = ("async " if is_async else "") + f"def _proc({', '.join(names)}):\n"
    body = "".join(_INDENT + line for line in text.splitlines(keepends=True))
    if not body.strip():
        body += _INDENT + "pass\n"
    filename = source_name("proc", name)
    try:
        tree = ast.parse(hdr + body, filename, "exec")
        _shift_to_user_text(tree)
        code = compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise _syntax_error(name, exc, 1, True) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, deep nesting
        raise CompileError(name, str(exc) or type(exc).__name__) from None
    _register_source(filename, text)
    return Procedure(
        name=str(name),
        code=code,
        variables=names,
        is_async=is_async,
        defaults=dict(defaults),
        filename=filename,
    )


def compile_module_code(text: str, name: str) -> CodeType:
    """Compile a module's text; return the code object, and register the
    text with `linecache` (file name ``<distkv:module NAME>``).

    Raises `CompileError` when it does not compile, `InputRefused` when
    ``text`` is no string (checked at run time: stored values are untyped).
    """
    if not isinstance(text, str):
        raise InputRefused(f"the code of module {name} is {type(text).__name__}, not text")
    filename = source_name("module", name)
    try:
        code = compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise _syntax_error(name, exc, 0, False) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CompileError(name, str(exc) or type(exc).__name__) from None
    _register_source(filename, text)
    return code
