"""What a job's ``_self`` starts (watchers, monitors, timers) and the
message classes it queues (``_cls``).

The classes are DistKV 0.65's own (`distkv.runner`, `distkv.actor`), so
job code moved over from DistKV's runner works unchanged: ``isinstance(msg,
_cls.ChangeMsg)`` and ``isinstance(msg, ChangeMsg)`` with DistKV's
``from distkv.runner import ChangeMsg`` are the same test, and a subclass
of DistKV's class given as ``cls=`` is used as it is there.

Each helper runs as a task of the job's task group (`JobContext`), so it
ends with the job, whichever way the job ends.
"""

import functools
import logging
from collections.abc import Callable, Generator, Mapping
from typing import Any

import anyio
import anyio.abc
from distkv.actor import ActorState, BrokenState, CompleteState, DetachedState, PartialState
from distkv.codec import unpacker
from moat.util import NotGiven, P, Path, attrdict

from ._members import GroupMembers

logger = logging.getLogger(__name__)

__all__ = ["runner_classes", "job_classes", "as_path", "topic_messages", "Watcher", "Monitor", "Timer", "Done"]

#: queue an event for the job (`JobContext.send_event`)
SendEvent = Callable[[Any], None]


@functools.cache
def runner_classes() -> Any:
    """DistKV's `distkv.runner` module (its message classes)."""
    # lazy: distkv.runner imports psutil (30-45 ms), which every `distkv
    # client run ...` command would pay; the classes are needed once a job runs
    import distkv.runner

    return distkv.runner


def job_classes(error_recorded: type[BaseException]) -> Any:
    """The ``_cls`` global: DistKV's message and state classes by name (an
    ``attrdict``, as DistKV's), ``ErrorRecorded`` being ours (the one
    ``_self.error()`` raises), plus `GroupMembers` (ours)."""
    r = runner_classes()
    res = attrdict()
    for c in (
        DetachedState,
        PartialState,
        CompleteState,
        ActorState,
        BrokenState,
        NotGiven,
        r.TimerMsg,
        r.ReadyMsg,
        r.ChangeMsg,
        r.MQTTmsg,
        r.RunnerMsg,
        error_recorded,
        GroupMembers,
    ):
        res[c.__name__] = c
    return res


def as_path(path: Any) -> Path:
    """A `Path` from a `Path`, a tuple or list of its elements (as DistKV),
    or a string in `P` notation (ours); else `RuntimeError` (DistKV's)."""
    if isinstance(path, Path):
        return path
    if isinstance(path, (tuple, list)):
        return Path.build(path)
    if isinstance(path, str):
        return P(path)
    raise RuntimeError(f"You didn't pass in a path: {path!r}")


class Done:
    """What ``cancel()`` of a helper returns: true if it stopped something.
    Awaitable too, because DistKV's ``Monitor.cancel`` is a coroutine
    while its watchers' and timers' are not: both ``m.cancel()`` and
    ``await m.cancel()`` work for each."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __await__(self) -> Generator[Any, None, bool]:
        yield from ()  # a generator that never suspends
        return self.value

    def __repr__(self) -> str:
        return f"<Done {self.value}>"


class _Task:
    """A helper task with a cancel scope."""

    scope: anyio.CancelScope | None = None

    def cancel(self) -> Done:
        """Stop it; true if it was running."""
        if self.scope is None:
            return Done(False)
        sc, self.scope = self.scope, None
        sc.cancel()
        return Done(True)


async def topic_messages(
    client: Any,
    topic: Path,
    cls: Any,
    raw: bool,
    send: SendEvent,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    """Queue the messages of MQTT ``topic`` as ``cls`` messages: ``.msg`` is
    the raw payload when ``raw`` is asked for or the payload cannot be
    decoded (then there is no ``.value``), else None; ``.value`` the
    decoded data; ``.path`` the topic.  Decoded here, not by the server:
    DistKV's client ends the whole stream with an error at the first
    payload the server cannot decode, so anybody could end the job's
    monitor (and with it the job) by sending garbage to its topic."""
    async with client.msg_monitor(topic, raw=True) as mon:
        task_status.started()
        async for msg in mon:
            if "topic" not in msg:
                continue
            payload = msg.get("raw")
            chg = None
            if not raw:
                try:
                    value = unpacker(payload)
                except Exception:
                    pass
                else:
                    chg = cls(None)
                    chg.value = value
            if chg is None:
                chg = cls(payload)
            chg.path = Path.build(msg.topic)
            send(chg)


class Watcher(_Task):
    """`JobContext.watch`'s helper: DistKV changes below ``path`` as
    ``cls`` messages (``.msg``: DistKV's message; ``.path``; ``.value``
    unless the entry was deleted).  A path marked ``r`` (an MQTT topic,
    as in DistKV) is monitored instead (see `topic_messages`)."""

    def __init__(
        self,
        client: Any,
        path: Path,
        cls: Any,
        kw: Mapping[str, Any],
        send: SendEvent,
        uptodate: Callable[[], None],
    ) -> None:
        self.client = client
        self.path = path
        self.cls = cls
        self.kw = dict(kw)
        self._send = send
        self._uptodate = uptodate

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch until cancelled; ``started`` once the server watches."""
        with anyio.CancelScope() as sc:
            self.scope = sc
            if self.path.mark == "r":
                await topic_messages(
                    self.client, self.path, self.cls, bool(self.kw.get("raw")), self._send, task_status
                )
                return
            async with self.client.watch(self.path, **self.kw) as watcher:
                task_status.started()
                async for msg in watcher:
                    if "path" in msg:
                        chg = self.cls(msg)
                        if "value" in msg:
                            chg.value = msg.value
                        chg.path = msg.path
                        self._send(chg)
                    elif msg.get("state", "") == "uptodate":
                        self._uptodate()


class Monitor(_Task):
    """`JobContext.monitor`'s helper: messages on the MQTT topic ``path``
    (wildcards allowed) as ``cls`` messages (see `topic_messages`)."""

    def __init__(self, client: Any, path: Path, cls: Any, kw: Mapping[str, Any], send: SendEvent) -> None:
        self.client = client
        self.path = path
        self.cls = cls
        self.kw = dict(kw)
        self._send = send

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Monitor until cancelled; ``started`` once the server listens."""
        with anyio.CancelScope() as sc:
            self.scope = sc
            await topic_messages(self.client, self.path, self.cls, bool(self.kw.get("raw")), self._send, task_status)


class Timer(_Task):
    """`JobContext.timer`'s helper: queues ``cls(timer)`` after ``delay``
    seconds.  ``await t.run(delay)`` starts it again (cancelling a pending
    one); ``t.cancel()`` stops it.  A delay of 0 or less queues nothing."""

    def __init__(self, tg: anyio.abc.TaskGroup, cls: Any, send: SendEvent) -> None:
        self._tg = tg
        self.cls = cls
        self._send = send
        self.delay: float | None = None

    async def _run(self, sc: anyio.CancelScope, delay: float) -> None:
        with sc:
            await anyio.sleep(delay)
            if self.scope is sc:
                self.scope = None
            self._send(self.cls(self))

    async def run(self, delay: float) -> None:
        """(Re)start the timer: fire ``delay`` seconds from now."""
        self.cancel()
        self.delay = delay
        if delay > 0:
            # the scope exists before the task starts: a cancel() right
            # after run() stops it
            self.scope = anyio.CancelScope()
            self._tg.start_soon(self._run, self.scope, delay)
