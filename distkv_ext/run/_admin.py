"""The ``_self`` global of a job: DistKV 0.65's job API (its `CallAdmin`),
with DistKV's names, signatures and message classes, and ours.

Paths are DistKV's: ``watch``, ``set``, ``get`` take paths from the root of
the store (as `distkv.client.Client` does, e.g. ``P("home.temp")``;
``P(":.distkv.x")`` below the server's root), ``send`` and ``monitor``
MQTT topics (a first element starting with ``:`` is prefixed with the
server's root by the server); nothing is relative to the job.  A path is a
`Path`, a tuple or list of its elements, or (ours) a string in `P`
notation.  A path marked ``r`` (``P("a.b:mr")``) is an MQTT topic for
``watch`` and ``set`` too, as in DistKV.

Everything the job starts (``spawn``, ``watch``, ``monitor``, ``timer``)
runs in the job's task group, and ``open_context`` enters a context on
the job's stack: all of it ends when the job ends, however it ends
(returned, failed, stopped, fenced, moved, code changed, runner stopped).
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from moat.util import NotGiven, Queue, spawn

from ._entry import RunnerEntry
from ._host import JobHost
from ._jobtasks import Monitor, Timer, Watcher, as_path, runner_classes

if TYPE_CHECKING:
    from ._job import Outcome  # (imports this module)

logger = logging.getLogger(__name__)

__all__ = ["JobContext", "ErrorRecorded", "QLEN"]

#: Length of the ``_info`` queue of async jobs (DistKV's: 10).  When it is
#: full, ``None`` is queued (as DistKV does) and further events are
#: dropped and counted, so a job that never reads it cannot make the
#: runner grow.
QLEN = 20

#: the keywords of DistKV's ``_self.error(path=None, **kw)`` (those of
#: `distkv.errors.ErrorRoot.record_error`)
_RECORD_KW = frozenset({"exc", "data", "severity", "message", "force", "comment"})


class ErrorRecorded(Exception):
    """Raised by ``_self.error()``: the job recorded its own error (the
    run ends as failed, the error is not recorded again).  ``_cls.ErrorRecorded``
    is this class; DistKV's own (`distkv.runner.ErrorRecorded`), raised by
    job code, counts the same."""


class JobContext:
    """The ``_self`` global of a job: what its code can ask of its runner.

    DistKV 0.65's API (``CallAdmin``), same names and signatures:

    * ``await _self.setup_done(comment=None, data=None)``: the job is set
      up: resets its error backoff and resolves its recorded error (as a
      run that lasted ``ok_after`` seconds); ``comment``/``data`` are
      added below the record.
    * ``await _self.error(path=None, **kw)``: record an error (``message``,
      ``exc``, ``data``, ``severity``, ``comment``, ``force``: those of
      DistKV's ``ErrorRoot.record_error``) at ``path`` (default: the job)
      and end the run as failed (raises `ErrorRecorded`).  Ours:
      ``await _self.error("message", **data)`` does the same with the
      keywords as data.  A first argument that is a string is a message.
    * ``await _self.spawn(proc, *a, **kw)``: run ``proc`` in the
      background; returns its `anyio.CancelScope`.
    * ``await _self.open_context(cm)``: enter async context ``cm`` until
      the job ends; returns what it yields.
    * ``await _self.watch(path, cls=ChangeMsg, max_depth=0, fetch=True, ...)``:
      queue the entry's changes (``cls(msg)`` with ``.path``, ``.value``)
      on ``_info``; once every watcher with ``fetch`` has sent the current
      state, a ``ReadyMsg(n)``.  Returns a watcher with ``cancel()``.
    * ``await _self.monitor(topic, cls=MQTTmsg, raw=False)``: queue the
      topic's messages (``.value``, ``.path``; ``.msg``: raw bytes).
    * ``await _self.timer(delay, cls=TimerMsg)``: queue ``cls(timer)``
      after ``delay`` seconds; the timer has ``run(delay)`` and ``cancel()``.
    * ``await _self.send(topic, value=NotGiven, raw=None)``: publish.
    * ``await _self.set(path, value, chain=NotGiven)``: store a value.
    * ``await _self.get(path, value=NotGiven)``: the stored value; if
      there is none, ``value`` if given, else `KeyError`.
    * ``_self.cancel()``: end the job's code now (a success, result None).

    Ours: ``_self.info`` is the ``_info`` queue (also for sync code),
    ``_self.dropped`` counts events that did not fit.

    ``_self.watch``/``monitor`` return once the server watches, so no
    change after that is missed (DistKV's return before).
    """

    def __init__(self, runner: JobHost, entry: RunnerEntry, first: Sequence[Any] = ()) -> None:
        self._runner = runner
        self._first = tuple(first)  # events for the code right after ReadyMsg(0)
        self._entry = entry
        self._client = runner.client
        self.info = Queue(QLEN)
        self.dropped = 0
        self.healthy = False
        #: thread-safe calls that stop the code where it runs outside the
        #: event loop (its worker thread); `halt` makes them
        self.halts: list[Callable[[], None]] = []
        self.returned: Outcome | None = None  # the Outcome, once the code has ended
        self.cancelled = False  # the code called cancel()
        self.reads_info = False  # the code got ``_info`` (async code)
        self._closed = False  # None queued: no more events (DistKV's overflow)
        self._tg: anyio.abc.TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._n_watch = 0
        self._n_watch_seen = 0

    # --- for the runner ---

    def send_event(self, evt: Any) -> None:
        """Queue an event for the job.  When the queue has one free slot
        left, ``None`` goes there instead (DistKV's sign of an overflow)
        and later events are dropped (counted in ``dropped``)."""
        if self._closed:
            self.dropped += 1
            return
        try:
            if self.info.qsize() < QLEN - 1:
                self.info.put_nowait(evt)
                return
            self.info.put_nowait(None)
        except anyio.WouldBlock:  # cannot be: only we fill it
            pass
        self._closed = True
        self.dropped += 1
        if self.reads_info:
            logger.warning("%s: its event queue is full; no more events for this run", self._entry)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[anyio.abc.TaskGroup]:
        """The job's task group (yielded) and context stack: what the job
        starts ends when this ends; the contexts close after its tasks."""
        async with AsyncExitStack() as stack:
            async with anyio.create_task_group() as tg:
                self._stack, self._tg = stack, tg
                self.send_event(runner_classes().ReadyMsg(0))  # as DistKV, before the code starts
                for evt in self._first:  # (the group's state: DistKV's only says when it changes)
                    self.send_event(evt)
                try:
                    yield tg
                finally:
                    tg.cancel_scope.cancel()
                    self._tg = None
        self._stack = None

    def halt(self) -> None:
        """Stop the code where it runs outside the event loop (any thread
        may call this; see `halts`)."""
        for stop in list(self.halts):
            try:
                stop()
            except Exception:  # one that fails must not keep the others
                logger.exception("could not halt %s", self._entry)

    def _group(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            raise RuntimeError(f"{self._entry} is not running")
        return self._tg

    # --- DistKV's CallAdmin API ---

    def cancel(self) -> None:
        """End the job's code now: the run ends as a success, result None."""
        self.cancelled = True
        self._group().cancel_scope.cancel()

    async def spawn(self, proc: Callable[..., Awaitable[Any]], *a: Any, **kw: Any) -> anyio.CancelScope:
        """Run ``proc(*a, **kw)`` in the background until it returns or the
        job ends; returns a cancel scope that stops it."""
        sc: anyio.CancelScope = await spawn(self._group(), proc, *a, **kw)
        return sc

    async def setup_done(self, comment: str | None = None, data: Any = None, force: bool = False) -> None:
        """The job is set up: reset its error count, resolve its error
        (once).  ``comment``/``data`` go below the job's error record, if
        there is one, as this node's entry (what DistKV's
        ``record_working(comment=...)`` means to do: DistKV 0.65 writes
        them over the record itself, which destroys it).  ``force`` (make
        a record if there is none) is accepted and ignored."""
        if not self.healthy:
            self.healthy = True
            await self._runner.job_healthy(self._entry)
        if comment is None and not data:
            return
        try:
            err = self._runner.err
            rec = await err.get_error_record("run", self._entry._path, create=False)
            if rec is not None:
                await rec.real_entry.add_exc(err.name, exc=None, data=data or {}, comment=comment)
        except Exception as exc:
            logger.warning("could not add the comment of %s: %r", self._entry, exc)

    async def error(self, *args: Any, **kw: Any) -> None:
        """Record an error for this job and end the run (raises
        `ErrorRecorded`).  DistKV's ``error(path=None, **kw)`` or ours
        ``error(message, **data)`` (see the class doc)."""
        if len(args) > 1:
            raise TypeError("error() takes a message or a path, and keywords")
        path = None
        if args and isinstance(args[0], str):  # ours: error(message, **data)
            message, data, extra = args[0], kw, {}
        elif args or "path" in kw or set(kw) <= _RECORD_KW:  # DistKV's
            path = args[0] if args else kw.pop("path", None)
            unknown = set(kw) - _RECORD_KW
            if unknown:
                raise TypeError(f"error() got unexpected keyword arguments {sorted(unknown)}")
            message = kw.pop("message", None)
            data = kw.pop("data", None) or {}
            extra = kw
        else:  # ours, with message= as a keyword
            message = kw.pop("message", None)
            data, extra = kw, {}
        await self._runner.record_job_error(
            self._entry,
            message=message,
            data=data,
            exc=extra.get("exc"),
            path=None if path is None else as_path(path),
            severity=extra.get("severity", 0),
            comment=extra.get("comment"),
            force=bool(extra.get("force", False)),
        )
        what = message or extra.get("comment") or (repr(extra["exc"]) if extra.get("exc") else None)
        raise ErrorRecorded(str(what) if what else "error recorded by the job")

    async def open_context(self, ctx: AbstractAsyncContextManager[Any]) -> Any:
        """Enter ``ctx`` until the job ends; return what it yields."""
        if self._stack is None or self._tg is None:
            raise RuntimeError(f"{self._entry} is not running")
        return await self._stack.enter_async_context(ctx)

    def _watch_uptodate(self) -> None:
        self._n_watch_seen += 1
        if self._n_watch_seen == self._n_watch:
            self.send_event(runner_classes().ReadyMsg(self._n_watch_seen))

    async def watch(self, path: Any, cls: Any = None, **kw: Any) -> Watcher:
        """Queue changes of the entry at ``path`` (``max_depth``: and
        below) as ``cls`` (default ``ChangeMsg``); see the class doc."""
        path = as_path(path)
        kw.setdefault("max_depth", 0)
        if kw.setdefault("fetch", True) and path.mark != "r":
            self._n_watch += 1
        w = Watcher(
            self._client,
            path,
            cls or runner_classes().ChangeMsg,
            kw,
            self.send_event,
            self._watch_uptodate,
        )
        await self._group().start(w.run)
        return w

    async def monitor(self, path: Any, cls: Any = None, **kw: Any) -> Monitor:
        """Queue the messages of MQTT topic ``path`` as ``cls`` (default
        ``MQTTmsg``); see the class doc."""
        m = Monitor(self._client, as_path(path), cls or runner_classes().MQTTmsg, kw, self.send_event)
        await self._group().start(m.run)
        return m

    async def timer(self, delay: float, cls: Any = None) -> Timer:
        """Queue ``cls(timer)`` (default ``TimerMsg``) after ``delay`` seconds."""
        t = Timer(self._group(), cls or runner_classes().TimerMsg, self.send_event)
        await t.run(delay)
        return t

    async def send(self, path: Any, value: Any = NotGiven, raw: bytes | None = None) -> None:
        """Publish ``value`` (or the bytes ``raw``) to MQTT topic ``path``."""
        data = None if value is NotGiven else value
        await self._client.msg_send(topic=as_path(path), data=data, raw=raw)

    async def set(self, path: Any, value: Any, chain: Any = NotGiven) -> Any:
        """Store ``value`` at ``path`` (``chain``: only if unchanged since);
        DistKV's reply.  A path marked ``r`` publishes instead."""
        path = as_path(path)
        if path.mark == "r":
            return await self.send(path, value)
        if path.mark:
            raise RuntimeError(f"What should I do with a path marked {path.mark!r}")
        return await self._client.set(path, value=value, chain=chain)

    async def get(self, path: Any, value: Any = NotGiven) -> Any:
        """The value stored at ``path``; if none: ``value`` if given, else
        `KeyError`."""
        path = as_path(path)
        res = await self._client.get(path)
        if "value" in res:
            return res.value
        if value is not NotGiven:
            return value
        raise KeyError(path)
