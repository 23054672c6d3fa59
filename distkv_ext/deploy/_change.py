"""The deploy plan as data: where things are stored, one change, the plan."""

from dataclasses import dataclass, field

from distkv.default import CFG
from moat.util import Path

__all__ = ["Change", "Plan", "Prefixes", "job_label"]


@dataclass(frozen=True)
class Prefixes:
    """Where things are stored (DistKV's configuration: ``codes.prefix``,
    ``modules.prefix``, ``runner.prefix``, ``runner.state``)."""

    procs: Path = CFG.codes.prefix
    modules: Path = CFG.modules.prefix
    jobs: Path = CFG.runner.prefix
    states: Path = CFG.runner.state

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg["codes"]["prefix"], cfg["modules"]["prefix"], cfg["runner"]["prefix"], cfg["runner"]["state"])


def job_label(path, where):
    kind, group, node = where
    place = f"at {node} {group}" if kind == "single" else f"{kind} {group}"
    return f"{path} ({place})"


@dataclass
class Change:
    """One entry of the plan: ``action`` is add, change, remove or unchanged."""

    kind: str  # "module", "procedure", "job"
    path: Path
    action: str
    source: str | None = None  # the file (None: not in the directory)
    old: dict | None = None  # the stored value
    new: dict | None = None  # the value to store
    chain: object = None  # the stored entry's chain (None: no entry)
    where: tuple = ()  # jobs: (kind, group, node)
    diff: str = ""

    @property
    def label(self):
        return f"job {job_label(self.path, self.where)}" if self.kind == "job" else f"{self.kind} {self.path}"


@dataclass
class Plan:
    """What a deploy would do.  ``problems`` non-empty: it must not run."""

    root: str
    changes: list = field(default_factory=list)
    restarts: list = field(default_factory=list)  # dicts: job, nodes, why
    problems: list = field(default_factory=list)
    prefixes: Prefixes = field(default_factory=Prefixes)

    @property
    def pending(self):
        return [c for c in self.changes if c.action != "unchanged"]

    def count(self, action):
        return sum(1 for c in self.changes if c.action == action)
