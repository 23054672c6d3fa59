"""The exceptions of distkv-code's library.

Every error that a user can cause derives from :class:`CodeError` and
carries the :class:`~.status.ExitStatus` that the command line maps it
to, so the CLI's error boundary needs no table of its own.
"""

from .status import ExitStatus

__all__ = [
    "CodeError",
    "NotFound",
    "InputRefused",
    "CompileError",
    "BadFile",
    "ServerUnreachable",
    "ProcedureFailed",
    "EmptyCode",
    "BadArguments",
    "MissingModule",
    "Conflict",
    "NotTrusted",
    "BadKeyFile",
]


class CodeError(Exception):
    """Base class. ``str(exc)`` is a complete one-line message;
    ``exit_status`` is the command line's exit status for it (1 here)."""

    exit_status: ExitStatus = ExitStatus.FAILURE


class NotFound(CodeError, LookupError):
    """Nothing is stored at this path (exit status 3).

    ``what`` names the kind of entry (``procedure``, ``module``, ...); the
    default message is ``no WHAT stored at PATH``."""

    exit_status = ExitStatus.NOT_FOUND

    def __init__(self, what: str, path: object, message: str | None = None) -> None:
        self.what = what
        self.path = path
        super().__init__(message or f"no {what} stored at {path}")


class InputRefused(CodeError, ValueError):
    """The input cannot be stored: nothing was written (exit status 4)."""

    exit_status = ExitStatus.REFUSED


class CompileError(InputRefused):
    """The code does not compile.

    Attributes:
      name: what was compiled (a procedure's or module's path)
      lineno: line number in the user's source (1-based), or None
      msg: the compiler's message, e.g. ``invalid syntax``
      filename: the file the source came from, if known (set by callers)
    """

    def __init__(
        self,
        name: object,
        msg: str,
        lineno: int | None = None,
        text: str | None = None,
        filename: str | None = None,
    ) -> None:
        self.name = name
        self.msg = msg
        self.lineno = lineno
        self.text = text
        self.filename = filename
        super().__init__(name, msg, lineno)

    def __str__(self) -> str:
        """``FILE:LINE: MSG (for NAME)`` when the file is known, else
        ``NAME:LINE: MSG``."""
        where = self.filename or str(self.name)
        if self.lineno is not None:
            where += f":{self.lineno}"
        res = f"{where}: {self.msg}"
        if self.filename:
            res += f" (for {self.name})"
        return res


class BadFile(InputRefused):
    """A file could not be read, or is not UTF-8 text (exit status 4)."""


class ServerUnreachable(CodeError, ConnectionError):
    """The DistKV server cannot be reached, or the connection broke (exit
    status 5)."""

    exit_status = ExitStatus.SERVER


class EmptyCode(CodeError, LookupError):
    """The entry exists but holds no runnable code (it never compiled;
    exit status 3)."""

    exit_status = ExitStatus.NOT_FOUND


class ProcedureFailed(CodeError):
    """A called procedure raised; ``__cause__`` is its exception (exit
    status 1).  The message names the path and the exception."""

    def __init__(self, path: object, exc: BaseException) -> None:
        self.path = path
        super().__init__(f"{path} raised {type(exc).__name__}: {exc}")


class BadArguments(CodeError, TypeError):
    """A procedure was called without a required variable, or with too
    many (exit status 2)."""

    exit_status = ExitStatus.USAGE


class MissingModule(CodeError, ModuleNotFoundError):
    """A module that a procedure or module requires is not stored.

    The message names the chain that needed it (exit status 3)."""

    exit_status = ExitStatus.NOT_FOUND


class Conflict(CodeError):
    """Someone else changed the entry since it was read; nothing of ours
    was written over it (exit status 1)."""

    def __init__(self, path: object, message: str | None = None) -> None:
        self.path = path
        super().__init__(message or f"{path} was changed by someone else meanwhile; not overwritten")


class NotTrusted(InputRefused):
    """Code that is not signed by a trusted key (``runner: {trusted_keys:
    ...}``): it is not run or imported.  The message names the entry and
    why (unsigned, signed by another key, signature does not match)."""


class BadKeyFile(BadArguments):
    """A key file named in the configuration (``runner.group_key``,
    ``codes.signing_key``) cannot be read or holds no usable key (exit
    status 2, as for any bad setting): the message names the setting."""
