"""The runner roots: a mirror of a group's runner entries that runs them.

`AnyRunnerRoot` runs each job on one live node of the group,
`SingleRunnerRoot` runs the jobs of one named node, `AllRunnerRoot` runs
every job on every member.  What differs between them is their
`RunnerPolicy` (`_policy`); the scheduling, claiming and stopping of jobs
lives in `_scheduler.py` and `_lifecycle.py`; this file holds the handler
classes.
"""

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import cached_property, partial
from typing import Any, ClassVar, Self

import anyio
from moat.util import Path, combine_dict

from distkv_ext.code import CodeRoot
from distkv_ext.codekit import upstream
from distkv_ext.codekit.core.redact import redact
from distkv_ext.codekit.store.conn import server_errors
from distkv_ext.codekit.store.errtree import error_root
from distkv_ext.codekit.store.resync import ResyncRoot

from ._config import RunnerConfig
from ._connwatch import watch_connection
from ._entry import JobPath, RunnerEntry, StateEntry
from ._group import Group
from ._groupauth import GroupKeys
from ._joingroup import join_group
from ._layout import STATE_PREFIX, pause_prefix, split_job_path
from ._limiter import Limits
from ._loopwatch import LoopWatchdog
from ._orphans import forget_orphans
from ._pausewatch import PauseRoot
from ._policy import ALL, ANY, SINGLE, RunnerPolicy
from ._registry import records_base
from ._scheduler import Scheduler
from ._state import StateRoot
from ._writefence import fence_until_confirmed, record_run_error

logger = logging.getLogger(__name__)

__all__ = ["AnyRunnerRoot", "SingleRunnerRoot", "AllRunnerRoot"]


class _RunnerRoot(ResyncRoot):
    """Common base: a mirror of runner entries plus a `Scheduler`."""

    CFG = "runner"
    #: what this kind of runner does
    POLICY: ClassVar[RunnerPolicy]
    #: DistKV's name of the kind (its runner roots have it)
    SUB: ClassVar[str | None] = None

    def __init__(
        self,
        client: Any,
        path: Any,
        *,
        _subpath: Iterable[Any] = (),
        code: Any = None,
        node: str,
        config: RunnerConfig | None = None,
        group_keys: GroupKeys | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(client, path, **kw)
        self._subpath = tuple(_subpath)
        self._code = code
        self.node = node
        self.config = config if config is not None else RunnerConfig()
        #: the group key(s); no key: the group is unauthenticated
        self.group_keys = group_keys if group_keys is not None else GroupKeys()
        self.err: Any = None
        self.state: StateRoot | None = None
        self.pauses: PauseRoot | None = None
        self.group: Group | None = None
        self.scheduler = Scheduler(self)
        #: the concurrency limits of its jobs (`_limiter`)
        self.limits = Limits(self)
        self.ready = False
        self.ready_event = anyio.Event()
        self.lost: BaseException | None = None  # the exception, once the server connection is gone
        self.lost_event = anyio.Event()
        #: called (from the watchdog thread) when job code keeps the event
        #: loop stuck and cannot be stopped: the daemon ends the process
        #: (`hard_exit`); None: only log it (runners inside other programs)
        self.on_stuck: Callable[[str], None] | None = None
        self._threads: anyio.CapacityLimiter | None = None
        self.watchdog = LoopWatchdog(
            node, self.config.stall_seconds, self.config.timeout * 0.75, self._fence_stalled, self._stuck
        )

    @classmethod
    def child_type(cls, name: str) -> type[RunnerEntry]:
        return RunnerEntry

    @classmethod
    async def as_handler(
        cls,
        client: Any,
        subpath: Iterable[Any] = (),
        cfg: Mapping[str, Any] | RunnerConfig | None = None,
        code: Any = None,
        node: str | None = None,
        name: str | None = None,
        **kw: Any,
    ) -> Self:
        """Start the runner for the jobs below ``.distkv run`` + ``subpath``;
        return it once its entries and their states are loaded (as
        DistKV's); it joins its group and starts scheduling right after
        (``await r.wait_ready()`` waits for that).

        ``subpath`` is DistKV's: ``("any", GROUP)`` for what ``run all -g
        GROUP`` serves, ``("all", GROUP)``, ``("at", NODE, GROUP)``; ``()``
        serves everything below the prefix.  ``code``: a `CodeRoot` to use
        (default: the client's).  ``node``: this node's name (default: the
        client's name, which is DistKV's choice; for a single-node runner:
        the NODE of the subpath).  ``cfg``: a mapping that updates the
        ``runner:`` configuration (DistKV's keys and ours, see
        `RUNNER_DEFAULTS`), or a `RunnerConfig` (ours; DistKV's keys then
        come from the client's configuration).  Raises `BadArguments` for
        a bad setting (`BadKeyFile` for a key file that cannot be read),
        `ServerUnreachable` when the server cannot be reached.
        """
        upstream.apply_library()
        subpath = tuple(subpath)
        policy = cls.POLICY
        if node is None:
            node = policy.default_node(client.client_name, subpath)
        if name is None:
            name = str(Path("_distkv_code", client.name, "run", policy.kind, node, *subpath))
        base = client._cfg.get("runner", {})
        if isinstance(cfg, RunnerConfig):
            config, rcfg = cfg, combine_dict(base)
        else:
            rcfg = combine_dict(cfg or {}, base)
            config = RunnerConfig.load(rcfg)
        keys = GroupKeys.load(config.group_key, config.group_key_next) if policy.heartbeat_group else GroupKeys()
        async with server_errors():
            root: Self = await super().as_handler(
                client,
                cfg=rcfg,
                subpath=subpath,
                name=name,
                _subpath=subpath,
                code=code,
                node=node,
                config=config,
                group_keys=keys,
                **kw,
            )
            await root.wait_loaded()
        return root

    @property
    def policy(self) -> RunnerPolicy:
        """What this kind of runner does (see `_policy`)."""
        return self.POLICY

    @property
    def code(self) -> Any:
        """The `CodeRoot` whose procedures this runner runs (once started)."""
        if self._code is None:
            raise RuntimeError("the runner has not started yet")
        return self._code

    @property
    def name(self) -> str:
        """This node's name."""
        return self.node

    @property
    def state_subpath(self) -> tuple[Any, ...]:
        """Where this runner's job states live, below DistKV's ``runner.state``."""
        return self.POLICY.state_subpath(self._subpath, self.node)

    @property
    def kind(self) -> str:
        """This runner's kind: "any", "all" or "single"."""
        return self.POLICY.kind

    @property
    def state_prefix(self) -> Path:
        """DistKV's ``runner.state``: where job states, runner records and limit slots live."""
        return Path.build(self._cfg.get("state", STATE_PREFIX))

    def limit_group_of(self, entry: RunnerEntry) -> Any:
        """The GROUP whose limits the job ``entry`` shares (its runner group)."""
        found = split_job_path(self._subpath + tuple(entry.job_path))
        return None if found is None else found[1]

    def group_topic(self) -> tuple[str, ...]:
        """The message topic of this runner's group."""
        return self.POLICY.group_topic(self._subpath)

    async def run_starting(self) -> None:
        self.err = await error_root(self.client)
        if self._code is None:
            self._code = await CodeRoot.as_handler(self.client)
        self._code.add_module_listener(self.scheduler.modules_changed)
        if self.config.trusted_keys:  # before any job runs: only signed code
            await self._code.trust(self.config.trusted)
        self.state = await StateRoot.as_handler(self.client, cfg=self._cfg, subpath=self.state_subpath)
        self.state.set_runner(self)
        await super().run_starting()

    async def running(self) -> None:
        if self.POLICY.heartbeat_group:
            self.group = join_group(
                self,
                ".".join(str(x) for x in self._subpath),
                records_base(self._cfg.get("state", STATE_PREFIX), self._subpath),
                self._lost,
            )
            listen: Callable[..., Awaitable[None]] = self.group.run
        else:
            listen = partial(watch_connection, self.client, self.group_topic(), self._lost)
        self._tg.start_soon(self._start_engine, listen)
        await super().running()

    async def _start_engine(self, listen: Callable[..., Awaitable[None]]) -> None:
        """Join the group (or watch the connection), then schedule.  In the
        background, as DistKV's runner starts its actor: `as_handler`
        returns once the entries are loaded, costing the server no more
        events than DistKV's; `wait_ready` waits for this."""
        await self._tg.start(self.watchdog.run)
        # the pauses before the first decision; here, not in `run_starting`, so that
        # `as_handler` costs the server no more events than DistKV's (test_server_events)
        self.pauses = await PauseRoot.open(self.client, self._subpath, self.pause_changed, pause_prefix(self._cfg))
        await self._tg.start(listen)
        await self._tg.start(self.limits.run)
        await self._tg.start(self.scheduler.run)
        self._tg.start_soon(forget_orphans, self)  # jobs deleted while we were down
        self.ready = True
        self.ready_event.set()

    async def wait_ready(self) -> None:
        """Return once this runner hears its group and schedules its jobs,
        or has lost its server (then ``lost`` says why)."""
        async with anyio.create_task_group() as tg:

            async def wait(evt: anyio.Event) -> None:
                await evt.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(wait, self.ready_event)
            tg.start_soon(wait, self.lost_event)

    def _fence_stalled(self, reason: str) -> None:
        """The event loop has been stuck long enough for the group to take
        our shared jobs over: stop their code that runs outside the loop
        (called in the watchdog thread; see `_loopwatch`)."""
        if self.policy.shares_jobs and self.watchdog.token is not None:
            self.scheduler.fence_from_thread(self.watchdog.token, reason)

    def writes_unconfirmed(self, reason: str) -> None:
        """A write on the claim path was not confirmed in time: fence (our
        group counts us as gone, our shared jobs stop) until the server
        answers again (`_writefence`)."""
        fence_until_confirmed(self, reason)

    def _stuck(self, message: str) -> None:
        if self.on_stuck is not None:
            self.on_stuck(message)
        else:
            logger.error("%s", message)

    def _lost(self, exc: BaseException) -> None:
        self.lost = exc
        self.lost_event.set()

    # --- called by entries ---

    def state_for(self, subpath: JobPath, create: bool | None = None) -> StateEntry | None:
        """The state entry of the job at ``subpath`` (a tuple); by default
        created locally if missing, with ``create=False`` None then."""
        if self.state is None:
            raise RuntimeError("the runner has not started yet")
        st: StateEntry | None = self.state.follow(subpath, create=create)
        return st

    def paused(self, subpath: JobPath) -> str | None:
        """Why the job at ``subpath`` is paused (``run pause``), or None."""
        return None if self.pauses is None else self.pauses.why(subpath)

    def pause_changed(self, path: JobPath) -> None:
        """A pause at ``path`` changed: look at that job again, or at
        every job when ``path`` is above jobs (a group pause)."""
        self.scheduler.trigger(path if self.scheduler.index.has_entry(path) else None)

    def entry_changed(self, entry: RunnerEntry) -> None:
        """Called by a `RunnerEntry` whose value changed."""
        self.scheduler.entry_changed(entry)

    def state_changed(self, state: StateEntry, old_node: str | None) -> None:
        """Called (through the `StateRoot`) by a `StateEntry` whose value changed."""
        self.scheduler.state_changed(state, old_node)

    # --- for the code (JobContext) ---

    @property
    def thread_limiter(self) -> anyio.CapacityLimiter:
        """The worker threads of its sync and thread jobs (``runner.threads``; made on first use, in the loop)."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.config.threads)
        return self._threads

    @cached_property
    def job_cfg(self) -> Any:
        """Job code's ``_cfg``: `redact`ed once per runner, shared (as DistKV's)."""
        return redact(self.client._cfg)

    async def job_waiting(self, entry: RunnerEntry, reason: str | None) -> None:
        """The job waits for a worker thread (``reason``), or no longer (None)."""
        await self.scheduler.lifecycle.job_waiting(entry, reason)

    async def job_healthy(self, entry: RunnerEntry) -> None:
        """The job is set up (or ran ``ok_after`` seconds): reset its error count."""
        await self.scheduler.job_healthy(entry)

    async def record_job_error(
        self,
        entry: RunnerEntry,
        message: str | None,
        data: dict[str, Any] | None = None,
        exc: BaseException | None = None,
        *,
        path: Any = None,
        severity: int = 0,
        comment: str | None = None,
        force: bool = False,
    ) -> None:
        """Record an error of the job in DistKV's error tree at ``path``
        (default: the job's entry; the other keywords: DistKV's
        ``record_error``) and wait up to 2 s until it is there; failures to
        record are logged, not raised."""
        await record_run_error(
            self.err,
            entry,
            message,
            data,
            exc,
            path=path,
            severity=severity,
            comment=comment,
            force=force,
        )

    async def stop(self) -> None:
        """Stop cleanly: leave the group (others take over any-node jobs at
        once), stop every job, release its state.  Returns when done or
        after ``stop_timeout`` seconds."""
        if self.group is not None:
            await self.group.leave()
        await self.scheduler.stop_all("runner stopped")


class AnyRunnerRoot(_RunnerRoot):
    """Runs each job of the group on one live member (``.distkv run any GROUP``).

    ``r = await AnyRunnerRoot.as_handler(client, subpath=("any", GROUP),
    code=cr)`` (see `_RunnerRoot.as_handler`) loads the group's runner
    entries and runs them until the client closes or ``await r.stop()``.
    The runners of a group hear each other over DistKV's message channel
    (heartbeats); the live members share the jobs by weight, a job moves
    when its node is gone (after ``timeout``), and a job is claimed before
    it starts, so that no two nodes run it at once.
    """

    POLICY = ANY
    SUB = "group"


class SingleRunnerRoot(_RunnerRoot):
    """Runs the jobs of one node (``.distkv run at NODE GROUP``).

    ``await SingleRunnerRoot.as_handler(client, subpath=("at", NODE,
    GROUP), code=cr)``; the node is NODE unless given.  Nobody else runs
    these jobs: no group, no claims.  If the connection to the server is
    lost, ``lost_event`` is set.
    """

    POLICY = SINGLE
    SUB = "single"


class AllRunnerRoot(_RunnerRoot):
    """Runs every job of the group on every member (``.distkv run all GROUP``);
    each member keeps its own state (``.distkv state all GROUP NODE ...``).

    ``await AllRunnerRoot.as_handler(client, subpath=("all", GROUP),
    code=cr)``.  The members hear each other (heartbeats) only to tell the
    jobs who is there (``_info``); every member runs every job.
    """

    POLICY = ALL
    SUB = "all"
