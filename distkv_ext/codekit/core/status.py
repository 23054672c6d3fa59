"""Exit statuses: one table for every command of distkv-code.

The numbers are a public contract (README, man pages); scripts and CI
steps test them.
"""

import enum

__all__ = ["ExitStatus"]


class ExitStatus(enum.IntEnum):
    """What a ``distkv client code|module|run`` command's exit code means."""

    #: Success; for ``diff`` and ``deploy --dry-run``: no differences.
    OK = 0
    #: ``diff``/``deploy --dry-run``: differences found.  Also any failure
    #: that none of the codes below describes (a procedure that raised, ...).
    DIFFERENT = 1
    #: The command line was wrong (unknown option, missing argument).
    USAGE = 2
    #: The path names nothing that is stored.
    NOT_FOUND = 3
    #: Input refused: does not compile, dependency cycle, bad or unreadable
    #: file.  Nothing was written.
    REFUSED = 4
    #: The DistKV server cannot be reached, or the connection broke.
    SERVER = 5
    #: Interrupted (Ctrl-C / SIGINT).
    INTERRUPTED = 130
    #: Standard output was closed by its reader (``... | head -1``): the
    #: command stopped quietly, as a shell reports one that SIGPIPE ended.
    PIPE_CLOSED = 141

    #: Alias: generic failure.
    FAILURE = 1
