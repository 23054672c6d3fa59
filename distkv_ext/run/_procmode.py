"""Process mode, the runner's side: `run_child` runs a procedure stored
with ``process: true`` in a child process of its own.

The child is ``python -m distkv_ext.run._child`` (see there).  It gets
everything over its standard input, never in its arguments or
environment: the code text the runner verified (the child never reads
code from the store), the job's variables, its runner entry (a
read-only view), the DistKV client configuration (with its secrets: the
child opens its own connection) and the redacted one for ``_cfg``.  The
input stays open: when it reaches its end (the runner is gone), the
child ends too.

What the child writes to stdout and stderr becomes the job's output
(streams ``stdout`` and ``stderr``, with the caps of every job's output);
its log records (``_log``) come as stream ``log``, over a pipe of their
own that also brings back the result, or the error as one line and its
traceback (`ChildFailed`).  A child that exits without either is a
`ChildFailed` naming its exit status or signal.

Stopping (the job stopped, moved, fenced, the runner stopping): the
child gets SIGTERM, and SIGKILL ``runner.kill_grace`` seconds later if
it has not exited by then.  `run_child` returns (raises the
cancellation) only once the child has exited: until then the run, and
so the job's claim, is held.  The child is started from the event
loop's thread (not a worker thread): Linux's ``PR_SET_PDEATHSIG``, which
the child sets, fires when the thread that started it ends.
`kill_children` (the daemon's SIGTERM backstop, `_stopguard`) kills
every child at once.
"""

import codecs
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import trio
from moat.util import Path, packer, stream_unpacker

from distkv_ext.codekit.core.errors import CodeError

from . import _output
from ._entry import RunnerEntry
from ._host import JobHost

logger = logging.getLogger(__name__)

__all__ = ["ChildFailed", "run_child", "kill_children", "CHILD_MODULE"]

#: The module the child runs (``python -m ...``).
CHILD_MODULE = "distkv_ext.run._child"

#: Seconds to wait, after the child exited, for the rest of its output
#: (a grandchild may hold its pipes open: then it is cut off).
_DRAIN = 1.0

_children: set["subprocess.Popen[bytes]"] = set()


class ChildFailed(Exception):
    """A process-mode run ended with an error: the code's (its one line,
    e.g. ``ValueError: boom``, and ``traceback_lines``, the child's
    traceback), or the child's end without a result."""

    def __init__(self, message: str, traceback_lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.traceback_lines = traceback_lines or []


def kill_children() -> None:
    """SIGKILL every process-mode child of this process (from any thread:
    the daemon's SIGTERM backstop calls it before it exits)."""
    for popen in list(_children):
        try:
            popen.kill()
        except OSError:
            pass


def _plain(x: Any, depth: int = 0) -> Any:
    """``x`` as data the child can receive (a `Path` stays one); anything
    else (a function, an SSL context) becomes its ``repr``."""
    if depth > 50:
        return None
    if x is None or isinstance(x, (bool, int, float, str, bytes, Path)):
        return x
    if isinstance(x, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v, depth + 1) for v in x]
    return repr(x)


def _connect_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The client configuration the child connects with (DistKV's
    ``connect:``, secrets included); `CodeError` if it cannot be passed."""
    connect = cfg.get("connect") or {}
    ssl = connect.get("ssl")
    if ssl is not None and not isinstance(ssl, (bool, Mapping)):
        raise CodeError("process mode: connect.ssl is no setting that a child process can be given")
    return {"connect": _plain(connect)}


def job_message(
    runner: JobHost,
    entry: RunnerEntry,
    code_entry: Any,
    variables: dict[str, Any],
    msg_fd: int,
    args: list[Any] | None = None,
) -> dict[str, Any]:
    """What the child gets on its standard input (see the module doc);
    ``args``: the procedure's positional arguments."""
    value = code_entry.verified
    return {
        "name": str(code_entry.name),
        "code": value["code"],
        "is_async": bool(code_entry.is_async),
        "vars": list(code_entry.procedure.variables),
        "kw": variables,
        "args": _plain(list(args or [])),
        "entry": {
            "path": Path.build(entry._path),
            "subpath": list(entry.subpath),
            "code": entry.code_path,
            "data": entry.data if isinstance(entry.data, dict) else {},
            "args": _plain(list(args or [])),
            "job": entry.job_name,
        },
        "log": f"distkv_code.job.{'.'.join(str(x) for x in entry.subpath)}",
        "client": _connect_config(runner.client._cfg),
        "cfg": _plain(runner.job_cfg),
        "sys_path": list(sys.path),
        "parent": os.getpid(),
        "grace": runner.config.kill_grace,
        "msg_fd": msg_fd,
    }


def _spawn(msg_fd: int) -> "subprocess.Popen[bytes]":
    # in this (the event loop's) thread, see the module doc; its own
    # session: a Ctrl-C at the runner's terminal goes to the runner, which
    # stops its jobs in order
    return subprocess.Popen(
        [sys.executable, "-P", "-m", CHILD_MODULE],  # -P: no working directory on sys.path
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(msg_fd,),
        start_new_session=True,
    )


def _stream(fd: int) -> trio.lowlevel.FdStream:
    return trio.lowlevel.FdStream(os.dup(fd))


async def _exited(popen: "subprocess.Popen[bytes]") -> int:
    """Wait until the child has exited; its return code (-N: signal N)."""
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):  # no pidfd: a thread waits
        return await anyio.to_thread.run_sync(popen.wait, cancellable=True)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return popen.wait()


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"child process killed by {name} ({-code}) without a result"
    return f"child process exited with status {code} without a result"


async def run_child(
    runner: JobHost,
    entry: RunnerEntry,
    code_entry: Any,
    variables: dict[str, Any],
    halts: list[Callable[[], None]] | None = None,
    args: list[Any] | None = None,
) -> Any:
    """Run ``code_entry``'s verified code for ``entry`` in a child process
    with ``variables`` (data over defaults) and the positional ``args``
    (the entry's, checked by the caller); return its result.  Raises
    `ChildFailed` for its error; cancelling it stops the child (see the
    module doc) and waits for its end.  ``halts``: while the child runs,
    this list holds a call that any thread may make to end it at once
    (the watchdog's fence, `_loopwatch`: SIGTERM, and SIGKILL after a
    tenth of ``runner.timeout`` at most)."""
    grace = runner.config.kill_grace
    if runner.policy.shares_jobs:
        # a job stopped because its runner is cut off must end before the
        # others take it over (after runner.timeout): the grace is shorter
        grace = min(grace, runner.config.timeout / 4)
    buf = _output.current()
    answer: dict[str, Any] = {}
    r_fd, w_fd = os.pipe()
    try:
        message = packer(job_message(runner, entry, code_entry, variables, w_fd, args or []))
    except BaseException:
        os.close(r_fd)
        os.close(w_fd)
        raise
    try:
        popen = _spawn(w_fd)
    except BaseException:
        os.close(r_fd)
        raise
    finally:
        os.close(w_fd)
    _children.add(popen)
    halt = _halter(popen, min(grace, runner.config.timeout / 10))
    if halts is not None:
        halts.append(halt)
    assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
    streams = [_stream(popen.stdin.fileno()), _stream(popen.stdout.fileno()), _stream(popen.stderr.fileno())]
    for f in (popen.stdin, popen.stdout, popen.stderr):
        f.close()
    msgs = trio.lowlevel.FdStream(r_fd)
    scopes: list[anyio.CancelScope] = []
    drained = anyio.Event()
    pending = [3]

    def write(stream: str, text: str) -> None:
        if buf is not None:
            buf.write(stream, text)
        else:
            logger.info("%s %s: %s", entry, stream, text.rstrip("\n"))

    async def pump(stream: trio.lowlevel.FdStream, got: Callable[[bytes], None]) -> None:
        with anyio.CancelScope(shield=True) as sc:  # the output of the child's last moments counts too
            scopes.append(sc)
            try:
                while data := await stream.receive_some(65536):
                    got(data)
            except (trio.ClosedResourceError, trio.BrokenResourceError, OSError):
                pass
        pending[0] -= 1
        if not pending[0]:
            drained.set()

    unpacker = stream_unpacker(use_list=True)

    def got_message(data: bytes) -> None:
        unpacker.feed(data)
        for msg in unpacker:
            if not isinstance(msg, Mapping):
                continue
            if "log" in msg:
                if buf is not None:
                    buf.add("log", str(msg["log"]))
            else:
                answer.update(msg)

    def decoder(stream: str) -> Callable[[bytes], None]:
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        return lambda data: write(stream, dec.decode(data))

    code: int | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump, streams[1], decoder("stdout"))
            tg.start_soon(pump, streams[2], decoder("stderr"))
            tg.start_soon(pump, msgs, got_message)
            try:
                try:
                    await streams[0].send_all(message)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # it died at once: its exit status says why
                code = await _exited(popen)
            finally:
                with anyio.CancelScope(shield=True):
                    if code is None:  # stopped: SIGTERM, then SIGKILL after the grace
                        code = await _stop(popen, grace)
                    with anyio.move_on_after(_DRAIN):
                        await drained.wait()
                    for sc in scopes:
                        sc.cancel()
    finally:
        _children.discard(popen)
        if halts is not None:
            halts.remove(halt)
        for s in (*streams, msgs):
            with anyio.CancelScope(shield=True):
                await s.aclose()
    if "result" in answer:
        return answer["result"]
    if "error" in answer:
        raise ChildFailed(str(answer["error"]), [str(x) for x in answer.get("traceback") or ()])
    raise ChildFailed(_how_it_ended(code))


def _halter(popen: "subprocess.Popen[bytes]", grace: float) -> Callable[[], None]:
    """A call (any thread) that ends ``popen``: SIGTERM, SIGKILL ``grace`` seconds later."""

    def kill() -> None:
        if popen.returncode is None:
            _signal_group(popen, signal.SIGKILL)

    def halt() -> None:
        _signal_group(popen, signal.SIGTERM)
        timer = threading.Timer(grace, kill)
        timer.daemon = True
        timer.start()

    return halt


def _signal_group(popen: "subprocess.Popen[bytes]", sig: int) -> None:
    """Send ``sig`` to the child and what it started (its process group:
    it leads its own session)."""
    with contextlib.suppress(OSError):
        os.killpg(popen.pid, sig)


async def _stop(popen: "subprocess.Popen[bytes]", grace: float) -> int:
    """SIGTERM, wait ``grace`` seconds, SIGKILL (the child's whole process
    group: what it started too); wait for the child's end."""
    _signal_group(popen, signal.SIGTERM)
    with anyio.move_on_after(grace):
        code = await _exited(popen)
        _signal_group(popen, signal.SIGKILL)  # what it left behind
        return code
    logger.warning("process-mode job (pid %d) ignored SIGTERM for %g s: SIGKILL", popen.pid, grace)
    _signal_group(popen, signal.SIGKILL)
    return await _exited(popen)
