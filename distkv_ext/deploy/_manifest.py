"""What a deploy tree wrote: its manifest in the store.

``--prune`` must remove only what an earlier deploy of the same tree
wrote and the tree no longer has (as kubectl's applysets or Terraform's
state do), never an entry written by hand, by ``code set``, or by
another tree.  So every deploy records what it wrote:

* **Where**: ``.distkv code deploy NAME`` (`MANIFEST_PREFIX` + NAME), one
  entry per tree, beside the procedures, modules and history (so the
  DistKV ACL that lets a user deploy covers it).
* **The tree's name**: ``code deploy --name NAME``, by default the
  directory's own name (``deploy`` for ``./deploy``).  Give CI checkouts,
  whose directory names vary, a fixed ``--name``.
* **What**: every entry the tree holds after the deploy (procedures,
  modules, jobs), each with the `entry_hash` of the value the deploy
  stored; plus when, by whom and from which directory.  An entry the
  tree no longer has stays listed (without ``--prune``) as long as it
  is stored as the tree wrote it, so a later ``--prune`` removes it; one
  that someone changed since is no longer the tree's: it is dropped from
  the manifest and never pruned.
* **Two trees, one entry**: an entry belongs to one tree.  Deploying an
  entry that another tree's manifest lists is a problem (exit status 4,
  naming the other tree) unless ``--take-over``, which moves it to this
  tree (the other tree's manifest loses it, so it never prunes it).

The manifest is written after the entries, conditional on it being
unchanged since the plan read it; a deploy that stops half way leaves
it as it was (the entries written meanwhile belong to the tree again on
its next deploy, or are left alone by ``--prune``: never too much).
"""

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from moat.util import P, Path

from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.values import plain
from distkv_ext.codekit.store.entries import list_entries_with_chain

__all__ = ["MANIFEST_PREFIX", "Manifest", "entry_hash", "read_manifests", "check_tree_name", "manifest_key"]

#: Where the manifests of deploy trees live (one entry per tree name).
MANIFEST_PREFIX = P(":.distkv.code.deploy")


def check_tree_name(name):
    """``name`` if it can name a deploy tree (one line of printable text, at
    most 100 characters, not ``.`` or ``..``); else `InputRefused`."""
    if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 100 or name in (".", ".."):
        raise InputRefused(f"{name!r} cannot name a deploy tree (printable text, at most 100 characters)")
    return name


def entry_hash(value):
    """A hash of a whole stored value (every field, ``info`` too): what
    the manifest remembers of each entry, to see later whether it is
    still as the deploy wrote it."""
    text = json.dumps(plain(value), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def manifest_key(kind, path, where=()):
    """The key of an entry: (kind, path) of a module or procedure, (kind,
    (job kind, group, node, job path as a tuple)) of a job: the keys of
    `Tree` and the plan."""
    if kind == "job":
        return ("job", tuple(where) + (tuple(path),))
    return (kind, Path.build(path))


@dataclass
class Manifest:
    """One tree's manifest: ``entries`` ({key: hash}, see `manifest_key`),
    the chain of the stored entry (None: none stored yet)."""

    name: str
    entries: dict = field(default_factory=dict)
    chain: Any = None
    source: str | None = None
    deployed: float | None = None
    by: str | None = None

    @classmethod
    def from_value(cls, name, value, chain):
        """The manifest stored as ``value``; entries it cannot read are left out."""
        m = cls(name=name, chain=chain)
        if not isinstance(value, dict):
            return m
        m.source, m.deployed, m.by = value.get("source"), value.get("deployed"), value.get("by")
        for e in value.get("entries") or ():
            try:
                kind, path, h = e["kind"], Path.build(e["path"]), str(e["hash"])
                where = tuple(e.get("where") or ())
                m.entries[manifest_key(kind, path, where)] = h
            except (KeyError, TypeError, ValueError):
                continue
        return m

    def to_value(self, by=None, source=None, deployed=None):
        """The value to store (paths as DistKV paths, sorted); ``deployed``
        defaults to now."""
        entries = []
        for (kind, rest), h in sorted(self.entries.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            if kind == "job":
                entries.append({"kind": kind, "where": list(rest[:3]), "path": Path.build(rest[3]), "hash": h})
            else:
                entries.append({"kind": kind, "path": rest, "hash": h})
        when = time.time() if deployed is None else deployed
        return {"name": self.name, "source": source, "deployed": when, "by": by, "entries": entries}


async def read_manifests(client, prefix=MANIFEST_PREFIX):
    """{tree name: `Manifest`} of every deploy tree recorded in the store."""
    res = {}
    async for p, v, chain in list_entries_with_chain(client, prefix, max_depth=1):
        if len(p) == 1:
            res[str(p[0])] = Manifest.from_value(str(p[0]), v, chain)
    return res
