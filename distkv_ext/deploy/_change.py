"""The deploy plan as data: where things are stored, one change, the plan."""

from dataclasses import dataclass, field

from distkv.default import CFG
from moat.util import Path

from ._manifest import MANIFEST_PREFIX, Manifest

__all__ = ["Change", "Plan", "Prefixes", "job_label"]


@dataclass(frozen=True)
class Prefixes:
    """Where things are stored (DistKV's configuration: ``codes.prefix``,
    ``modules.prefix``, ``runner.prefix``, ``runner.state``; and the deploy
    trees' manifests)."""

    procs: Path = CFG.codes.prefix
    modules: Path = CFG.modules.prefix
    jobs: Path = CFG.runner.prefix
    states: Path = CFG.runner.state
    manifests: Path = MANIFEST_PREFIX

    @classmethod
    def from_config(cls, cfg):
        """The prefixes of DistKV's configuration ``cfg``."""
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
    why: str | None = None  # removals: why --prune removes it

    @property
    def label(self):
        return f"job {job_label(self.path, self.where)}" if self.kind == "job" else f"{self.kind} {self.path}"


@dataclass
class Plan:
    """What a deploy would do.  ``problems`` non-empty: it must not run.

    ``name``: the deploy tree's name; ``manifest``: its manifest as stored
    (see `._manifest`); ``entries``: the manifest's entries after the
    deploy; ``take_over``: {other tree: [keys]} that move to this tree;
    ``not_pruned``: dicts (label, why) of entries the tree wrote but that
    were changed since (never pruned); ``notes``: lines for the reader."""

    root: str
    changes: list = field(default_factory=list)
    restarts: list = field(default_factory=list)  # dicts: job, nodes, why
    problems: list = field(default_factory=list)
    prefixes: Prefixes = field(default_factory=Prefixes)
    name: str = ""
    manifest: Manifest | None = None
    entries: dict = field(default_factory=dict)
    others: dict = field(default_factory=dict)  # {tree name: Manifest} of the other trees
    take_over: dict = field(default_factory=dict)
    not_pruned: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def pending(self):
        """The changes that write something (not "unchanged")."""
        return [c for c in self.changes if c.action != "unchanged"]

    @property
    def manifest_changed(self):
        """Does the deploy change the tree's manifest (its entries, or
        another tree's that it takes entries over from)?"""
        old = self.manifest.entries if self.manifest is not None else {}
        return old != self.entries or bool(self.take_over)

    def count(self, action):
        """How many changes have this action."""
        return sum(1 for c in self.changes if c.action == action)
