"""Capturing what a job prints and logs, and keeping it in DistKV.

While a job runs, a context variable names its `OutputBuffer`.  Two hooks,
installed once per process, route to it:

* ``sys.stdout`` / ``sys.stderr`` become `RoutedStream` proxies: a write
  made in a job's context (its task, the tasks it starts, its worker
  thread: trio copies the context into threads) goes to the job's buffer,
  anything else to the real stream;
* a handler on the root logger copies every log record made in a job's
  context (``_log`` and any library the job calls) into its buffer.  The
  record still goes to the normal handlers (the journal) as well.

When a run fails, its traceback (or, for a failure before the code ran,
the reason) ends its output, as stream ``traceback`` (`add_failure`).

A buffer keeps the last ``output_lines`` lines (and counts what it
dropped); it is written to ``.distkv output KIND GROUP [NODE] JOB RUN``
(``runner.output``) at most once a second while the job runs, and at the
end.  The last ``output_runs`` runs of each job are kept.
"""

import contextvars
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import anyio
import trio

from distkv_ext.codekit.store.entries import list_entries

__all__ = [
    "OutputBuffer",
    "cut_marker",
    "install",
    "capture",
    "current",
    "keeper",
    "delete_run",
    "add_failure",
    "TRACEBACK_STREAM",
    "failure_lines",
    "forget_runs",
    "is_run",
]

#: The stream name of the lines that say why a run failed (its traceback).
TRACEBACK_STREAM = "traceback"
#: At most this many traceback lines go into a run's output.
TRACEBACK_LINES = 60

logger = logging.getLogger(__name__)

_current: contextvars.ContextVar["OutputBuffer | None"] = contextvars.ContextVar("distkv_code_job_output", default=None)
_installed = False


class OutputBuffer:
    """The captured output of one run: its last ``max_lines`` lines, of at
    most ``max_chars`` characters together; a line longer than
    ``max_line_chars`` is cut and ends with `cut_marker` (an endless line
    without a newline too: memory stays bounded whatever the job writes)."""

    def __init__(self, max_lines: int = 200, max_line_chars: int = 2000, max_chars: int = 100_000) -> None:
        self.max_lines = max_lines
        self.max_line_chars = max_line_chars
        self.max_chars = max(max_chars, max_line_chars + 100)
        self.lines: list[list[Any]] = []  # [time, stream, text]
        self.dropped = 0
        self._chars = 0
        self._partial: dict[str, str] = {}
        self._cut: dict[str, int] = {}  # characters cut off the unfinished line of a stream
        self.changed = anyio.Event()
        self.dirty = False
        self._token = trio.lowlevel.current_trio_token()

    def write(self, stream: str, text: str) -> None:
        """Add ``text`` written to ``stream``; an unfinished line waits for its end."""
        text = self._partial.pop(stream, "") + text
        cut = self._cut.pop(stream, 0)
        *done, rest = text.split("\n")
        for line in done:
            self.add(stream, line, cut)
            cut = 0  # only the first line continues the unfinished one
        if len(rest) > self.max_line_chars:
            cut += len(rest) - self.max_line_chars
            rest = rest[: self.max_line_chars]
        if rest:
            self._partial[stream] = rest
        if cut:
            self._cut[stream] = cut

    def add(self, stream: str, line: str, cut: int = 0) -> None:
        """Add one line (cut to ``max_line_chars``; ``cut``: characters cut
        off it before).  The oldest lines go beyond ``max_lines`` or
        ``max_chars``."""
        if len(line) > self.max_line_chars:
            cut += len(line) - self.max_line_chars
            line = line[: self.max_line_chars]
        if cut:
            line += cut_marker(cut)
        self.lines.append([time.time(), stream, line])
        self._chars += len(line)
        n = max(0, len(self.lines) - self.max_lines)
        gone = sum(len(x[2]) for x in self.lines[:n])
        while self._chars - gone > self.max_chars and n < len(self.lines) - 1:
            gone += len(self.lines[n][2])
            n += 1
        if n:
            self._chars -= gone
            del self.lines[:n]
            self.dropped += n
        self.dirty = True
        try:
            self.changed.set()
        except RuntimeError:  # a worker thread: wake the keeper via the loop
            self._token.run_sync_soon(self.changed.set)

    def close(self) -> None:
        """Add the unfinished lines."""
        for stream, rest in list(self._partial.items()):
            self.add(stream, rest, self._cut.pop(stream, 0))
        self._partial = {}
        self._cut = {}


def cut_marker(cut: int) -> str:
    """What ends a line that was cut (``cut`` characters are missing)."""
    return f" [... {cut} more characters cut]"


class RoutedStream:
    """A ``sys.stdout``/``sys.stderr`` stand-in routing job output."""

    def __init__(self, orig: TextIO, name: str) -> None:
        self._orig = orig
        self._name = name

    def write(self, text: str) -> int:
        buf = _current.get()
        if buf is None:
            return self._orig.write(text)
        buf.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._orig.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._orig, name)


class _LogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buf = _current.get()
        if buf is None:
            return
        try:
            buf.add("log", f"{record.levelname} {record.name}: {record.getMessage()}")
        except Exception:
            self.handleError(record)


def install() -> None:
    """Install the stdout/stderr proxies and the log handler.

    Cheap when they are in place; called at every job start, since other
    code (a test harness, say) may replace ``sys.stdout`` meanwhile."""
    global _installed
    if not isinstance(sys.stdout, RoutedStream):
        sys.stdout = RoutedStream(sys.stdout, "stdout")
    if not isinstance(sys.stderr, RoutedStream):
        sys.stderr = RoutedStream(sys.stderr, "stderr")
    if not _installed:
        logging.getLogger().addHandler(_LogHandler(level=logging.DEBUG))
        # a job's own _log.info() is output too, whatever the root level
        job_log = logging.getLogger("distkv_code.job")
        if job_log.level == logging.NOTSET:
            job_log.setLevel(logging.INFO)
        _installed = True


@contextmanager
def capture(buf: OutputBuffer) -> Iterator[OutputBuffer]:
    """Context manager: code in this context writes to ``buf``."""
    token = _current.set(buf)
    try:
        yield buf
    finally:
        _current.reset(token)
        buf.close()


def current() -> OutputBuffer | None:
    """The buffer that code in this context writes to (None: none)."""
    return _current.get()


async def keeper(client: Any, path: Any, buf: OutputBuffer, meta: dict[str, Any], interval: float = 1.0) -> None:
    """Write ``buf`` to ``path`` whenever it changed, at most every
    ``interval`` seconds, until cancelled (then once more, shielded).  A
    buffer that never held a line is not written at all: ``meta`` gets
    ``stored`` only when a write was sent."""
    try:
        while True:
            await buf.changed.wait()
            buf.changed = anyio.Event()
            await anyio.sleep(interval)
            await _store(client, path, buf, meta)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(3):
            await _store(client, path, buf, meta)


async def _store(client: Any, path: Any, buf: OutputBuffer, meta: dict[str, Any]) -> None:
    if not buf.dirty and meta.get("stored"):
        return
    if not meta.get("stored") and not buf.lines and not buf.dropped:
        return  # a quiet run stores nothing (``stored`` stays unset)
    buf.dirty = False
    meta["stored"] = True
    value = {k: v for k, v in meta.items() if k != "stored"}
    value.update(lines=list(buf.lines), dropped=buf.dropped)
    try:
        await client.set(path, value=value)
    except Exception as exc:
        logging.getLogger(__name__).debug("could not store output at %s: %r", path, exc)


async def delete_run(client: Any, path: Any) -> None:
    """Delete the output of a run at ``path`` (gone meanwhile, or the
    server went away: logged at debug level)."""
    try:
        await client.delete(path)
    except Exception as exc:
        logger.debug("could not delete %s: %r", path, exc)


async def forget_runs(client: Any, job_base: Any) -> int:
    """Delete every stored run of a job whose output is kept below
    ``job_base`` (the path without the run number); return how many.
    Only values that are a run's output (its number is its name) go: a
    job named like ``JOB.1.x`` keeps its own."""
    gone = 0
    # listed first: a stop while deleting leaves no listing half read
    runs = [p async for p, v in list_entries(client, job_base, max_depth=1) if is_run(p, v)]
    for p in runs:
        try:
            await client.delete(job_base + p)
            gone += 1
        except Exception as exc:  # gone meanwhile, or the server went away: nothing to keep
            logger.debug("could not delete %s: %r", job_base + p, exc)
    return gone


def is_run(p: Any, v: Any) -> bool:
    """Is ``v`` at ``p`` (one element: the run number) the output of a run?"""
    return len(p) == 1 and str(p[0]).isdigit() and isinstance(v, dict) and v.get("run") == int(str(p[0]))


#: Frames of these files are the runner's plumbing, not the job's code:
#: left out of a failed run's traceback.
_PLUMBING = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *d)
    for d in (("run", ""), ("code", ""), ("codekit", "core", "compiler.py"))
)


def failure_lines(exc: BaseException | None, error: str | None) -> list[str]:
    """Why a run failed, as lines: the traceback of ``exc`` without the
    runner's own frames (at most `TRACEBACK_LINES`), or ``error: ...``
    when there is no traceback worth showing (the code did not compile,
    its procedure is missing, the job recorded its own error)."""
    given = getattr(exc, "traceback_lines", None)  # from elsewhere: a process-mode child's
    if given:
        return _at_most(given)
    tb = exc.__traceback__ if exc is not None else None
    if exc is None or tb is None or getattr(exc, "exit_status", None) is not None:
        return [f"error: {error or exc!r}"]
    te = traceback.TracebackException(type(exc), exc, tb)
    own = [f for f in te.stack if not f.filename.startswith(_PLUMBING)]
    if own:
        te.stack = traceback.StackSummary.from_list(own)
    return _at_most("".join(te.format()).splitlines())


def _at_most(given: Any) -> list[str]:
    """``given`` lines, at most `TRACEBACK_LINES` (the middle left out)."""
    lines = [str(x) for x in given]
    if len(lines) > TRACEBACK_LINES:
        half = TRACEBACK_LINES // 2
        lines = lines[:half] + [f"... ({len(lines) - TRACEBACK_LINES} lines left out)"] + lines[-half:]
    return lines


def add_failure(buf: OutputBuffer, exc: BaseException | None, error: str | None) -> None:
    """End a failed run's output with `failure_lines` (stream `TRACEBACK_STREAM`)."""
    for line in failure_lines(exc, error):
        buf.add(TRACEBACK_STREAM, line)
