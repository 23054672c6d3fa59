"""Process mode, the child's side: ``python -m distkv_ext.run._child``.

Started by `_procmode.run_child`, which writes one message to its
standard input (see there) and keeps that open.  The child:

* dies with its runner: Linux's ``PR_SET_PDEATHSIG`` sends it SIGTERM
  when the runner ends, however it ends (``kill -9`` too); and a thread
  waiting for the end of its standard input (the runner gone, on any
  system) ends the process ``kill_grace`` seconds after it;
* opens its own DistKV connection (``_client``) with the runner's client
  configuration;
* compiles the code text it was given (it never reads code from the
  store: it runs what the runner verified) and runs it, sync code in a
  worker thread (so ``anyio.from_thread.run(_client.get, ...)`` works
  there, as in the runner), async code in its event loop;
* on SIGTERM stops the code (async code is cancelled, sync code gets
  `JobStopped` raised in its thread) and exits;
* sends back the result (if DistKV can store it) or the error (one line
  and the traceback) over the pipe the runner gave it, log records too.

Globals of the code: its variables, ``_client``, ``_cfg`` (redacted),
``_entry`` (a read-only `EntryView`), ``_log``, ``_P``, ``_Path``,
``_digits``.  ``_self``, ``_info`` and ``_cls`` (the runner's job API)
are not available: they are `Unavailable`, and using them raises
`ProcessModeError` saying so.
"""

import ctypes
import logging
import os
import signal
import sys
import threading
from functools import partial
from typing import Any, NoReturn

import anyio
from distkv.client import open_client
from moat.util import P, Path, attrdict, digits, packer, stream_unpacker

from distkv_ext.codekit.core.compiler import compile_procedure

from ._job import one_line, result_outcome
from ._output import failure_lines
from ._threads import run_stoppable

__all__ = ["EntryView", "Unavailable", "ProcessModeError", "main"]

_PR_SET_PDEATHSIG = 1
#: exit status of a child whose runner went away (its standard input ended)
EXIT_ORPHANED = 3
#: exit status of a child whose code was stopped (SIGTERM)
EXIT_STOPPED = 143

_send_lock = threading.Lock()
_msg_fd = -1


class ProcessModeError(RuntimeError):
    """Job code used what process mode does not offer (``_self``, ``_info``, ``_cls``)."""


class Unavailable:
    """Stands in for a global that process mode does not offer: any use
    raises `ProcessModeError` naming it."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        name = object.__getattribute__(self, "_name")
        raise ProcessModeError(
            f"{name} is not available in process mode (the job runs in a child process, apart from its runner)"
        )

    def __getattr__(self, attr: str) -> Any:
        self._refuse()

    __call__ = __setattr__ = __getitem__ = __iter__ = __bool__ = _refuse


class EntryView:
    """``_entry`` in process mode: the runner entry's ``path``,
    ``subpath``, ``code``, ``data``, ``args`` and ``job`` (its name), read-only;
    anything else raises `ProcessModeError`."""

    _FIELDS = ("path", "subpath", "code", "data", "args", "job")

    def __init__(self, fields: dict[str, Any]) -> None:
        for k in self._FIELDS:
            object.__setattr__(self, k, fields.get(k))

    def __getattr__(self, attr: str) -> Any:
        raise ProcessModeError(f"_entry.{attr} is not available in process mode (there: {', '.join(self._FIELDS)})")

    def __setattr__(self, attr: str, value: Any) -> NoReturn:
        raise ProcessModeError("_entry is read-only in process mode")

    def __repr__(self) -> str:
        return f"<EntryView {object.__getattribute__(self, 'path')}>"


def _send(msg: dict[str, Any]) -> None:
    data = packer(msg)
    with _send_lock:
        while data:
            n = os.write(_msg_fd, data)
            data = data[n:]


class _LogToRunner(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _send({"log": f"{record.levelname} {record.name}: {record.getMessage()}"})
        except Exception:
            self.handleError(record)


def _die_with_parent() -> None:
    """``PR_SET_PDEATHSIG``: SIGTERM when the runner ends (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the end of standard input ends us


def _read_job() -> dict[str, Any]:
    unpacker = stream_unpacker(use_list=True)
    while True:
        data = os.read(0, 65536)
        if not data:
            os._exit(EXIT_ORPHANED)  # the runner went before it said what to run
        unpacker.feed(data)
        for msg in unpacker:
            return dict(msg)


def _watch_stdin(grace: float) -> None:
    """Until our standard input ends (the runner is gone); then, after
    ``grace`` seconds for a stop to work, end the process."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    threading.Event().wait(grace)
    os._exit(EXIT_ORPHANED)


def _globals(job: dict[str, Any], client: Any) -> dict[str, Any]:
    kw = dict(job["kw"])
    kw.update(
        _client=client,
        _cfg=attrdict(job["cfg"]),
        _entry=EntryView(job["entry"]),
        _log=logging.getLogger(job["log"]),
        _P=P,
        _Path=Path,
        _digits=digits,
        _self=Unavailable("_self"),
        _cls=Unavailable("_cls"),
    )
    if job["is_async"]:
        kw["_info"] = Unavailable("_info")
    return kw


class _Stopped(Exception):
    pass


async def _run(job: dict[str, Any]) -> Any:
    proc = compile_procedure(job["code"], job["name"], variables=job["vars"], is_async=job["is_async"] or None)
    res: list[Any] = []
    # SIGTERM (the job stopped) cancels everything below: connecting, the
    # code; in place before either starts (before it, SIGTERM's default
    # action ended the process at once)
    with anyio.open_signal_receiver(signal.SIGTERM) as sigs, anyio.CancelScope() as scope:

        async def on_term() -> None:
            async for _ in sigs:
                scope.cancel()
                return

        async with anyio.create_task_group() as tg:
            tg.start_soon(on_term)
            async with open_client(**job["client"]) as client:
                kw = _globals(job, client)
                args = list(job.get("args") or ())  # positional arguments (a runner entry's args)
                if job["is_async"]:
                    res.append(await proc(*args, **kw))
                else:
                    res.append(await run_stoppable(partial(proc, *args, **kw)))
            tg.cancel_scope.cancel()
    if not res:
        raise _Stopped
    return res[0]


def main() -> None:
    """Run the job given on standard input (see the module doc)."""
    global _msg_fd
    _die_with_parent()
    job = _read_job()
    if os.getppid() != job["parent"]:  # it went before PDEATHSIG was set
        os._exit(EXIT_ORPHANED)
    _msg_fd = int(job["msg_fd"])
    threading.Thread(target=_watch_stdin, args=(float(job["grace"]),), daemon=True).start()
    for p in reversed(job["sys_path"]):
        if p not in sys.path:
            sys.path.insert(0, p)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    root = logging.getLogger()
    root.addHandler(_LogToRunner(level=logging.DEBUG))
    root.setLevel(logging.WARNING)
    logging.getLogger("distkv_code.job").setLevel(logging.INFO)

    try:
        res = anyio.run(_run, job, backend="trio")
    except _Stopped:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_STOPPED)
    except BaseException as exc:
        err = exc
        while hasattr(err, "exceptions") and len(err.exceptions) == 1:  # a group of one: the error in it
            err = err.exceptions[0]
        _send({"error": one_line(err), "traceback": failure_lines(err, one_line(err))})
    else:
        outcome = result_outcome(res, 0.0)
        if outcome.ok:
            _send({"result": res})
        else:
            _send({"error": outcome.error})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
