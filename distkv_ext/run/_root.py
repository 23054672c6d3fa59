"""The runner roots: a mirror of a group's runner entries that runs them.

`AnyRunnerRoot` runs each job on one live node of the group,
`SingleRunnerRoot` runs the jobs of one named node, `AllRunnerRoot` runs
every job on every member.  The scheduling, claiming and stopping of
jobs lives in `_scheduler.py`; this file holds the handler classes.
"""

import logging

import anyio
from moat.util import Path, combine_dict

from distkv_ext.codekit.store.conn import server_errors
from distkv_ext.codekit.store.resync import ResyncRoot

from ._config import RUNNER_DEFAULTS
from ._entry import RunnerEntry
from ._group import Group, watch_connection
from ._scheduler import Scheduler
from ._state import StateRoot

logger = logging.getLogger(__name__)

__all__ = ["AnyRunnerRoot", "SingleRunnerRoot", "AllRunnerRoot"]


class _RunnerRoot(ResyncRoot):
    """Common base: a mirror of runner entries plus a `Scheduler`."""

    CFG = "runner"
    KIND = None
    SUB = None

    def __init__(self, client, path, *, _subpath=(), code=None, node=None, group_cfg=None, **kw):
        super().__init__(client, path, **kw)
        self._subpath = tuple(_subpath)
        self.code = code
        self.node = node
        self.err = None
        self.state = None
        self.group = None
        self.scheduler = Scheduler(self)
        self.rcfg = combine_dict(group_cfg or {}, RUNNER_DEFAULTS)
        self.ready = False
        self.lost = None  # the exception, once the server connection is gone
        self.lost_event = anyio.Event()

    @classmethod
    def child_type(cls, name):
        return RunnerEntry

    @classmethod
    def default_node(cls, client, subpath):
        return client.client_name

    @classmethod
    async def as_handler(cls, client, subpath=(), cfg=None, code=None, node=None, name=None, **kw):
        """Start the runner for the jobs below ``.distkv run`` + ``subpath``.

        ``subpath`` is DistKV's: ``("any", GROUP)`` for what ``run all -g
        GROUP`` serves, ``("all", GROUP)``, ``("at", NODE, GROUP)``; ``()``
        serves everything below the prefix.  ``code``: a `CodeRoot` to use
        (default: the client's).  ``node``: this node's name (default: the
        client's name, which is DistKV's choice; for a single-node runner:
        the NODE of the subpath).  ``cfg`` updates the ``runner:``
        configuration (see `RUNNER_DEFAULTS` for our keys).
        """
        subpath = tuple(subpath)
        if node is None:
            node = cls.default_node(client, subpath)
        if name is None:
            name = str(Path("_distkv_code", client.name, "run", cls.KIND, node, *subpath))
        rcfg = combine_dict(cfg or {}, client._cfg.get("runner", {}))
        async with server_errors():
            root = await super().as_handler(
                client,
                cfg=rcfg,
                subpath=subpath,
                name=name,
                _subpath=subpath,
                code=code,
                node=node,
                group_cfg=rcfg,
                **kw,
            )
            await root.wait_loaded()
        return root

    @property
    def name(self):
        """This node's name."""
        return self.node

    @property
    def state_subpath(self):
        return self._subpath

    def group_topic(self):
        return ("distkv_code", "run", *(str(x) for x in self._subpath))

    async def run_starting(self):
        from distkv_ext.code import CodeRoot
        from distkv_ext.codekit.store.errtree import error_root

        self.err = await error_root(self.client)
        if self.code is None:
            self.code = await CodeRoot.as_handler(self.client)
        if self.code.modules is not None:
            self.code.modules.add_listener(self.scheduler.modules_changed)
        self.state = await StateRoot.as_handler(self.client, cfg=self._cfg, subpath=self.state_subpath)
        self.state.set_runner(self)
        await super().run_starting()

    async def running(self):
        if self.KIND in ("any", "all"):
            self.group = Group(
                self.client,
                self.group_topic(),
                self.node,
                weight=self.rcfg["weight"],
                ping=self.rcfg["heartbeat"],
                timeout=self.rcfg["timeout"],
                on_change=self.scheduler.group_changed,
                load=lambda: len(self.scheduler.jobs),
                on_claim=self.scheduler.claim_message,
                on_lost=self._lost,
            )
            await self._tg.start(self.group.run)
        else:
            await self._tg.start(watch_connection, self.client, self.group_topic(), self._lost)
        await self._tg.start(self.scheduler.run)
        self.ready = True
        await super().running()

    def _lost(self, exc):
        self.lost = exc
        self.lost_event.set()

    # --- called by entries ---

    def state_for(self, subpath, create=None):
        """The state entry of the job at ``subpath`` (a tuple); by default
        created locally if missing, with ``create=False`` None then."""
        return self.state.follow(subpath, create=create)

    def entry_changed(self, entry):
        self.scheduler.entry_changed(entry)

    def state_changed(self, state, old_node):
        self.scheduler.state_changed(state, old_node)

    # --- for the code (JobContext) ---

    async def job_healthy(self, entry):
        await self.scheduler.job_healthy(entry)

    async def record_job_error(self, entry, message, data=None, exc=None):
        try:
            r = await self.err.record_error("run", entry._path, exc=exc, message=message, data=data or {})
            if r is not None:
                with anyio.move_on_after(2):
                    await self.err.wait_chain(r.chain)
        except Exception as e:
            logger.warning("could not record the error of %s: %r", entry, e)

    async def stop(self):
        """Stop cleanly: leave the group (others take over any-node jobs at
        once), stop every job, release its state.  Returns when done or
        after ``stop_timeout`` seconds."""
        if self.group is not None:
            await self.group.leave()
        await self.scheduler.stop_all("runner stopped")


class AnyRunnerRoot(_RunnerRoot):
    """Runs each job of the group on one live member (``.distkv run any GROUP``)."""

    KIND = "any"
    SUB = "group"


class SingleRunnerRoot(_RunnerRoot):
    """Runs the jobs of one node (``.distkv run at NODE GROUP``)."""

    KIND = "single"
    SUB = "single"

    @classmethod
    def default_node(cls, client, subpath):
        if len(subpath) >= 2 and subpath[0] == "at":
            return str(subpath[1])
        return client.client_name


class AllRunnerRoot(_RunnerRoot):
    """Runs every job of the group on every member (``.distkv run all GROUP``);
    each member keeps its own state (``.distkv state all GROUP NODE ...``)."""

    KIND = "all"
    SUB = "all"

    @property
    def state_subpath(self):
        return self._subpath + (self.node,)
