"""The scheduler's live `GroupView`: what `decide` needs to know of this
node's runner and its group, read from the scheduler and its root."""

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from ._policy import RunnerPolicy

if TYPE_CHECKING:
    from ._scheduler import Scheduler  # (creates us)

__all__ = ["SchedulerView"]


class SchedulerView:
    """The scheduler's live `GroupView` (for `decide`)."""

    def __init__(self, scheduler: "Scheduler") -> None:
        self._s = scheduler

    @property
    def node(self) -> str:
        return self._s.root.node

    @property
    def policy(self) -> RunnerPolicy:
        return self._s.root.policy

    @property
    def stopping(self) -> bool:
        return self._s.stopping

    @property
    def ready(self) -> bool:
        group = self._s.root.group
        return group is not None and group.ready

    @property
    def connected(self) -> bool:
        group = self._s.root.group
        return group is not None and group.connected

    @property
    def assignment(self) -> Mapping[str, str | None]:
        return self._s.assignment

    def is_live(self, node: str) -> bool:
        group = self._s.root.group
        return group is not None and group.is_live(node)

    @property
    def member_tags(self) -> Mapping[str, Collection[str]]:
        group = self._s.root.group
        if group is None:
            return {self.node: self._s.root.config.tags}
        return group.live_tags()
