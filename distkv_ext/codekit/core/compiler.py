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
import keyword
import linecache

from .errors import CompileError, InputRefused

__all__ = [
    "Procedure",
    "compile_procedure",
    "compile_module_code",
    "check_variables",
    "source_name",
]

_INDENT = "    "


def source_name(kind, name):
    """The pseudo file name under which stored code is compiled."""
    return f"<distkv:{kind} {name}>"


def _register_source(filename, text):
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    # mtime None: linecache.checkcache never drops the entry
    linecache.cache[filename] = (len(text), None, lines, filename)


def check_variables(variables):
    """Return ``variables`` as a list of valid, distinct parameter names.

    Raises `InputRefused` otherwise.
    """
    if isinstance(variables, str):
        raise InputRefused(f"variables must be a list of names, not the string {variables!r}")
    res = []
    for v in variables:
        if not isinstance(v, str) or not v.isidentifier() or keyword.iskeyword(v):
            raise InputRefused(f"{v!r} cannot be a variable name")
        if v in res:
            raise InputRefused(f"variable {v!r} is named twice")
        res.append(v)
    return res


def _syntax_error(name, exc, shift_line, shift_col):
    lineno = exc.lineno
    if lineno is not None:
        lineno = max(1, lineno - shift_line)
    msg = exc.msg
    text = exc.text
    if text is not None and shift_col and text.startswith(_INDENT):
        text = text[len(_INDENT) :]
    return CompileError(name, msg, lineno=lineno, text=text)


def _shift_to_user_text(tree):
    """Make positions those of the user's text: the header is line 1 and
    the body is indented by four columns; move both back."""
    ast.increment_lineno(tree, -1)
    n = len(_INDENT)
    for node in ast.walk(tree):
        if getattr(node, "col_offset", None) is not None and node.lineno >= 1:
            node.col_offset = max(0, node.col_offset - n)
        if getattr(node, "end_col_offset", None) is not None and node.end_lineno >= 1:
            node.end_col_offset = max(0, node.end_col_offset - n)


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

    def __init__(self, name, code, variables, is_async=None, defaults=None, filename=""):
        self.name = name
        self.code = code
        self.variables = variables
        self.is_async = is_async
        self.defaults = defaults or {}
        self.filename = filename

    def __repr__(self):
        return f"<Procedure {self.name} {self.variables}>"

    def bind(self, args, kw):
        """Return (positional args, globals dict) for one call."""
        if len(args) > len(self.variables):
            raise TypeError(f"{self.name} takes {len(self.variables)} positional arguments but {len(args)} were given")
        glob = dict(self.defaults)
        glob.update(kw)
        args = list(args)
        for v in self.variables[len(args) :]:
            try:
                args.append(glob.pop(v))
            except KeyError:
                raise TypeError(f"{self.name} needs a value for variable {v!r}") from None
        glob["__builtins__"] = builtins
        glob["__name__"] = f"distkv.proc.{self.name}"
        return args, glob

    def __call__(self, *args, **kw):
        args, glob = self.bind(args, kw)
        exec(self.code, glob)
        return glob["_proc"](*args)


def compile_procedure(text, name, *, variables=(), is_async=None, defaults=None):
    """Compile a procedure body. Raises `CompileError` / `InputRefused`.

    Args:
      text: the body (str)
      name: its path, for messages and the pseudo file name
      variables: parameter names
      is_async: None (sync), False (thread), True (async)
    """
    if not isinstance(text, str):
        raise InputRefused(f"the code of {name} is {type(text).__name__}, not text")
    if is_async not in (None, True, False):
        raise InputRefused(f"is_async of {name} must be true, false or null, not {is_async!r}")
    variables = check_variables(variables)
    if defaults is None:
        defaults = {}
    elif not isinstance(defaults, dict):
        raise InputRefused(f"the defaults of {name} must be a mapping")
    hdr = ("async " if is_async else "") + f"def _proc({', '.join(variables)}):\n"
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
        variables=variables,
        is_async=is_async,
        defaults=dict(defaults),
        filename=filename,
    )


def compile_module_code(text, name):
    """Compile a module's text; return the code object.

    Raises `CompileError` / `InputRefused`.
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
