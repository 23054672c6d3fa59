"""What a runner group knows of its members: `GroupMembers`, the event a
job hears when the live members change, and `Member`, what the last
heartbeat of another node said (see `_group`)."""

from collections.abc import Iterable

__all__ = ["GroupMembers", "Member", "Roster"]


class GroupMembers:
    """An ``_info`` event: the live members of the group changed.

    Attributes: ``nodes`` (sorted names), ``joined``, ``left``.
    """

    def __init__(self, nodes: Iterable[str], joined: Iterable[str] = (), left: Iterable[str] = ()) -> None:
        self.nodes = sorted(nodes)
        self.joined = sorted(joined)
        self.left = sorted(left)

    def __repr__(self) -> str:
        return f"<GroupMembers {self.nodes} +{self.joined} -{self.left}>"


class Member:
    """Another node as its last fresh heartbeat showed it: when we heard it
    (``seen``, monotonic), its ``weight``, ``load``, run (``instance``)
    and ``tags``."""

    __slots__ = ("seen", "weight", "load", "instance", "tags")

    def __init__(self, seen: float, weight: float, load: int, instance: str, tags: frozenset[str]) -> None:
        self.seen = seen
        self.weight = weight
        self.load = load
        self.instance = instance
        self.tags = tags


class Roster:
    """The other nodes of a group as their heartbeats showed them:
    ``members`` (name -> `Member`, from fresh heartbeats), ``known`` (every
    node seen since we started), and the runs of nodes whose heartbeats we
    heard lately, fresh or not (`hears`: whether their claims count)."""

    #: runs remembered at most (forged names, without a key: the newest stay)
    MAX_RUNS = 256

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.known: set[str] = set()
        self._runs: dict[str, tuple[str, float]] = {}  # node -> (its run, when we last heard a heartbeat)

    def hears(self, node: str, instance: str, now: float, timeout: float) -> bool:
        """Did a heartbeat of this run of ``node`` come within ``timeout``?"""
        run = self._runs.get(node)
        return run is not None and run[0] == instance and now - run[1] < timeout

    def heard_run(self, node: str, instance: str, now: float) -> None:
        """A heartbeat of run ``instance`` of ``node`` came (fresh or not)."""
        self._runs[node] = (instance, now)
        if len(self._runs) > self.MAX_RUNS:
            for n, _ in sorted(self._runs.items(), key=lambda kv: kv[1][1])[: -self.MAX_RUNS]:
                del self._runs[n]

    def heard(self, node: str, member: Member) -> Member | None:
        """A fresh heartbeat of ``node`` showed ``member``; return what the
        one before showed (None: none)."""
        old = self.members.get(node)
        self.members[node] = member
        self.known.add(node)
        return old

    def left(self, node: str) -> None:
        """``node`` said it stops."""
        self.members.pop(node, None)
        self._runs.pop(node, None)

    def of(self, live: frozenset[str]) -> dict[str, Member]:
        """{name: `Member`} of the members among ``live``."""
        return {n: m for n, m in self.members.items() if n in live}

    def within(self, now: float, timeout: float) -> set[str]:
        """The members heard from within ``timeout`` seconds of ``now``."""
        return {n for n, m in self.members.items() if now - m.seen < timeout}
