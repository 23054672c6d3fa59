"""Repair of trio 0.21.0's traceback formatting on Python 3.11.

trio 0.21 replaces ``traceback.TracebackException.format`` (to show the
parts of its ``MultiError``) with a function that takes only ``chain``.
Python 3.11 formats an ``ExceptionGroup`` by calling ``format`` of each
part with a second keyword, ``_ctx``: with trio imported, formatting a
nested exception group raises ``TypeError: traceback_exception_format()
got an unexpected keyword argument '_ctx'``.  That broke every
traceback of a job that failed inside a task group (the runner logs
them), ``-v`` tracebacks of the CLI, and pytest's report of such a
failure (an INTERNALERROR that ends the whole test session).

`apply` puts back a ``format`` that passes every keyword on and still
shows a ``MultiError``'s parts as trio does.
"""

import logging
import textwrap
import traceback
from collections.abc import Iterator
from typing import Any

import trio

__all__ = ["apply", "PACKAGE", "TARGET"]

PACKAGE = "trio"
#: The release this repair was written for (see `distkv_ext.codekit.upstream`).
TARGET = "0.21.0"

logger = logging.getLogger(__name__)
_applied = False


def apply() -> None:
    """Repair ``traceback.TracebackException.format`` (once, and only
    where trio's replacement of it is in place)."""
    global _applied
    if _applied:
        return
    _applied = True
    # trio's own version string: reading the installed metadata instead cost
    # ~2 ms (the first such read in a process) of the first procedure call
    have = trio.__version__
    if have != TARGET:
        logger.warning("trio %s is not %s: its traceback repair is not applied", have, TARGET)
        return
    # only now: another release may not have this module
    from trio._core import _multierror

    if traceback.TracebackException.format is not _multierror.traceback_exception_format:
        return  # someone else replaced it again: leave theirs
    original = _multierror.traceback_exception_original_format

    def format_(self: traceback.TracebackException, *, chain: bool = True, **kw: Any) -> Iterator[str]:
        yield from original(self, chain=chain, **kw)
        for i, exc in enumerate(getattr(self, "embedded", ())):
            yield f"\nDetails of embedded exception {i + 1}:\n\n"
            yield from (textwrap.indent(line, "  ") for line in exc.format(chain=chain))

    traceback.TracebackException.format = format_  # type: ignore[method-assign,assignment]
