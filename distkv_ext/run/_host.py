"""What the engine needs of its runner root: `RunnerHost` (and `JobHost`).

The scheduler, the runs and the job context (`_scheduler`, `_lifecycle`,
`_job`) work on their root through these protocols, so they need not
import the root (which creates them): no import cycle, and each can be
driven by a stand-in.
"""

from collections.abc import Iterator
from typing import Any, Protocol

from ._config import RunnerConfig
from ._entry import JobPath, RunnerEntry, StateEntry
from ._group import Group
from ._limiter import Limits
from ._policy import RunnerPolicy

__all__ = ["JobHost", "RunnerHost"]


class JobHost(Protocol):
    """What a running job reaches through its runner (`JobContext`, `execute`)."""

    @property
    def client(self) -> Any:
        """The DistKV client."""

    @property
    def code(self) -> Any:
        """The procedures (a `CodeRoot`; distkv_ext.code has no types yet)."""

    @property
    def err(self) -> Any:
        """DistKV's error tree handler."""

    @property
    def config(self) -> RunnerConfig:
        """The runner's settings (process mode: ``kill_grace``)."""

    async def job_healthy(self, entry: RunnerEntry) -> None:
        """The job says it is set up (or ran ``ok_after`` seconds)."""

    @property
    def policy(self) -> RunnerPolicy:
        """What this kind of runner does (see `_policy`)."""

    @property
    def job_cfg(self) -> Any:
        """The configuration without its secrets, for job code (``_cfg``)."""

    @property
    def thread_limiter(self) -> Any:
        """The worker threads for sync and thread code (an anyio
        ``CapacityLimiter`` of ``runner.threads`` tokens)."""

    async def job_waiting(self, entry: RunnerEntry, reason: str | None) -> None:
        """The job's code waits (``reason``) or, with None, no longer does:
        its state says so."""

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
        """Record an error of the job in DistKV's error tree (at ``path``,
        default the job's entry)."""


class RunnerHost(JobHost, Protocol):
    """A runner root, as its `Scheduler` and runs see it."""

    def writes_unconfirmed(self, reason: str) -> None:
        """A write on the claim path was not confirmed in time: fence."""

    @property
    def node(self) -> str:
        """This node's name."""

    @property
    def group(self) -> Group | None:
        """The heartbeat group (None: none, or not started yet)."""

    @property
    def state_subpath(self) -> tuple[Any, ...]:
        """Where this runner's job states live, below the state prefix."""

    @property
    def limits(self) -> Limits:
        """The concurrency limits of its jobs (`_limiter`)."""

    @property
    def all_children(self) -> Iterator[RunnerEntry]:
        """Every runner entry with a value."""

    def follow(self, path: JobPath, *, create: bool | None = None) -> RunnerEntry | None:
        """The runner entry at ``path`` (``create=False``: None if missing)."""

    def state_for(self, subpath: JobPath, create: bool | None = None) -> StateEntry | None:
        """The state entry of the job at ``subpath`` (``create=False``: None if missing)."""

    def paused(self, subpath: JobPath) -> str | None:
        """Why the job at ``subpath`` is paused (``run pause``), or None."""
