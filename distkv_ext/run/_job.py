"""Running one job once: globals, ``ok_after``, result, errors.

`execute` runs the procedure of a runner entry with the globals that
stored code expects and returns an `Outcome`; it never raises for what
the code does (only cancellation passes through).  The ``_self`` global
(`JobContext`) is `_admin`'s.
"""

import logging
import math
import time
import traceback
from collections.abc import Callable
from typing import Any

import anyio
from moat.util import P, Path, combine_dict, digits

from distkv_ext.codekit.core.errors import CodeError, NotTrusted

from ._admin import ErrorRecorded, JobContext
from ._entry import RunnerEntry
from ._host import JobHost
from ._jobtasks import job_classes, runner_classes
from ._loopwatch import LoopStalled, stalled_in
from ._pin import pin_problem
from ._procmode import ChildFailed, run_child
from ._threads import run_stoppable

logger = logging.getLogger(__name__)

__all__ = ["Outcome", "execute", "job_args"]


class Outcome:
    """How a run ended.

    ``ok``: it returned (``result`` holds the value); else ``error`` is a
    one-line description and ``exc`` the exception (None for errors the
    runner found before starting, like missing code).
    """

    def __init__(
        self,
        ok: bool,
        result: Any = None,
        error: str | None = None,
        exc: BaseException | None = None,
        started: float | None = None,
    ) -> None:
        self.ok = ok
        self.result = result
        self.error = error
        self.exc = exc
        self.started = started


def _serializable(value: Any, depth: int = 0) -> bool:
    """Is ``value`` something DistKV can store (msgpack-able plain data)?"""
    if depth > 50:
        return False
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return not isinstance(value, int) or -(2**63) <= value < 2**64
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, (list, tuple)):
        return all(_serializable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _serializable(v, depth + 1) for k, v in value.items())
    return False


def one_line(exc: BaseException) -> str:
    """``Type: message``, its first line."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def execute(runner: JobHost, entry: RunnerEntry, ctx: JobContext, *, on_ok_after: bool | None = None) -> Outcome:
    """Run ``entry``'s procedure once; return an `Outcome`.

    Globals of the code: ``_entry`` (the runner entry), ``_client``,
    ``_cfg`` (the client's configuration without its secrets, see
    `distkv_ext.codekit.core.redact`), ``_self`` (`JobContext`),
    ``_log`` (a logger for this job), ``_P``, ``_Path``, ``_cls`` and
    ``_digits`` (as in DistKV) and, for async code, ``_info``.
    Variables come from the entry's ``data`` over the procedure's
    defaults; the entry's ``args`` (a list) are positional arguments,
    filling the procedure's variables in order (what they fill needs no
    data).  Arguments the procedure cannot take (more than its variables)
    fail the run before the code starts, saying so.
    """
    started = time.time()
    try:
        code_entry = runner.code.lookup(entry.code_path)
        if code_entry.procedure is None:
            if isinstance(code_entry.error, NotTrusted):
                raise code_entry.error
            raise CodeError(f"procedure {entry.code_path} does not compile: {code_entry.error}")
        problem = pin_problem(entry.pin, entry.code_path, code_entry.value, runner.code.modules)
        if problem:
            raise CodeError(problem)
    except CodeError as exc:
        return Outcome(False, error=str(exc), exc=exc, started=started)
    except (TypeError, ValueError) as exc:  # a 'code' that is no path
        return Outcome(False, error=f"bad code path {entry.code!r}: {exc}", exc=exc, started=started)

    data = entry.data if isinstance(entry.data, dict) else {}
    # the defaults of the version that runs: the stored value may be a newer
    # one that does not compile (the previous version keeps serving)
    kw = combine_dict(dict(data), dict(code_entry.procedure.defaults), deep=True)
    variables = dict(kw)
    kw.update(
        _entry=entry,
        _client=runner.client,
        _cfg=runner.job_cfg,  # no secrets: what code returns or logs may be stored
        _self=ctx,
        _log=logging.getLogger(f"distkv_code.job.{'.'.join(str(x) for x in entry.subpath)}"),
        _P=P,  # as DistKV's runner: build paths in stored code
        _Path=Path,
        _cls=job_classes(ErrorRecorded),  # DistKV's message and state classes
        _digits=digits,
    )
    if code_entry.is_async:
        kw["_info"] = ctx.info
        ctx.reads_info = True
    args = job_args(entry.args)
    try:
        code_entry.procedure.bind(args, kw)
    except TypeError as exc:
        return Outcome(False, error=f"cannot call {entry.code_path}: {exc}", exc=exc, started=started)
    try:
        async with ctx.running() as tg:
            if entry.ok_after and entry.ok_after > 0 and on_ok_after is not None:

                async def healthy_after(t: float) -> None:
                    await anyio.sleep(t)
                    await ctx.setup_done()

                tg.start_soon(healthy_after, float(entry.ok_after))
            if code_entry.process:  # in a child process (see _procmode)
                res = await run_child(runner, entry, code_entry, variables, ctx.halts, args)
            elif code_entry.is_async:
                res = await code_entry(*args, **kw)
            else:  # sync and thread code: in a worker thread that a stop can end (see _threads)
                res = await _in_thread(runner, entry, ctx, code_entry.bound(*args, **kw))
            # the code has ended: a stop that comes now (sync code that
            # blocked the event loop gets fenced as soon as it returns)
            # must not turn this run into an interrupted one
            ctx.returned = result_outcome(res, started)
    except ErrorRecorded as exc:
        return Outcome(False, error=str(exc), exc=exc, started=started)
    except BaseException as exc:
        if stalled_in(exc):  # the watchdog stopped code that blocked the event loop
            return Outcome(False, error=str(LoopStalled()), exc=LoopStalled(), started=started)
        # the code's error, possibly grouped with a stop that arrived at the
        # same moment (a group with a cancellation in it is no Exception)
        errors = own_errors(exc)
        if not errors:
            raise  # a stop or an interrupt: not the code's failure
        logger.info("Job %s failed: %s", entry, "".join(traceback.format_exception(exc)))
        err = errors[0]
        if isinstance(err, runner_classes().ErrorRecorded):  # DistKV's, raised by the code
            err = ErrorRecorded(str(err) or "error recorded by the job")
        return Outcome(
            False,
            error=str(err) if isinstance(err, (ErrorRecorded, ChildFailed)) else one_line(err),
            exc=err,
            started=started,
        )
    if ctx.returned is None and ctx.cancelled:  # the code called _self.cancel()
        ctx.returned = Outcome(True, result=None, started=started)
    if ctx.returned is None:  # cannot be: the code returned (above) or raised
        raise RuntimeError(f"{entry} ended without an outcome")
    return ctx.returned


async def _in_thread(runner: JobHost, entry: RunnerEntry, ctx: JobContext, fn: Callable[[], Any]) -> Any:
    """``fn()`` in a worker thread of the runner's (``runner.threads`` of
    them); while none is free, the job's state says it waits for one."""
    limiter = runner.thread_limiter
    waited = False

    if limiter.available_tokens < 1:
        waited = True
        await runner.job_waiting(
            entry, f"waiting for a worker thread (all {limiter.total_tokens:g} busy; runner.threads)"
        )

    async def on_start() -> None:
        if waited:
            await runner.job_waiting(entry, None)

    return await run_stoppable(fn, limiter=limiter, halts=ctx.halts, on_start=on_start)


def job_args(args: Any) -> list[Any]:
    """A runner entry's ``args`` as the positional arguments of its
    procedure: a list (None: none).  The scheduler does not run an entry
    whose ``args`` is no list (`_layout.entry_problem`); here such a value
    counts as none."""
    return list(args) if isinstance(args, (list, tuple)) else []


def own_errors(exc: BaseException) -> list[BaseException]:
    """The errors of the code itself in ``exc``: ``[exc]`` for an ordinary
    exception; the ordinary exceptions in a group (nested ones too),
    cancellations and interrupts left out; ``[]`` when there are none."""
    if hasattr(exc, "exceptions"):  # an exception group (anyio's, trio's or Python's)
        return [e for sub in exc.exceptions for e in own_errors(sub)]
    return [exc] if isinstance(exc, Exception) else []


def result_outcome(res: Any, started: float) -> Outcome:
    """The `Outcome` of code that returned ``res``."""
    if not _serializable(res):
        return Outcome(
            False,
            error=f"result cannot be stored: {type(res).__name__} ({repr(res)[:100]})",
            started=started,
        )
    return Outcome(True, result=res, started=started)
