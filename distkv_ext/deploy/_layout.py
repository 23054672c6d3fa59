"""Reading a deploy directory: what it says the store should hold.

Layout (see the README, "Deploying from a directory")::

    DIR/procs/heating/pump.py     -> procedure heating.pump
    DIR/modules/util/pid.py       -> module util.pid
    DIR/modules/util/__init__.py  -> module util
    DIR/jobs.yaml                 -> runner entries

Procedure and module files may start with a ``# distkv:`` settings header
(`._header`).  Each part of the directory says what the deploy manages:
without ``procs/`` no procedure is touched (nor pruned), and so on.

Everything that can be checked without the store is checked here: every
file is read, decoded and compiled, every job's fields are checked; all
problems are collected (not just the first).  The deploy stays inside
its directory: a symlink that leads out of it, and anything that is no
regular file (a fifo would block the read, a device is not source), is
a problem, so nothing is written (exit status 4).
"""

import datetime
import os
import stat
from dataclasses import dataclass, field

from moat.util import Path, yload

from distkv_ext.code import procedure_value
from distkv_ext.codekit.core.errors import BadFile, CodeError, CompileError, InputRefused
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.source import read_source
from distkv_ext.module import module_value
from distkv_ext.run import JOB_FIELDS, NEW_JOB_DEFAULTS, job_value

from ._header import MODULE_KEYS, PROC_KEYS, first_line, procedure_fields, read_header

__all__ = ["Item", "Tree", "read_tree", "JOB_DEFAULTS"]

#: What a new job gets unless it says otherwise (as ``run set`` does).
#: The defaults of a new job (see `distkv_ext.run.NEW_JOB_DEFAULTS`).
JOB_DEFAULTS = NEW_JOB_DEFAULTS

_IGNORED_SUFFIXES = (".md", ".txt", ".rst", ".pyc")


@dataclass
class Item:
    """One entry the directory wants stored."""

    kind: str  # "module", "procedure" or "job"
    path: Path  # the store path (of a job: below its group)
    source: str  # where it came from, relative to the directory
    value: dict  # the value to store
    where: tuple = ()  # jobs: (kind, group, node)
    target_now: bool = False  # jobs: "target: now" (keep a stored start time)
    pin: bool = False  # jobs: pin the procedure's content hash

    @property
    def key(self):
        return (self.kind, self.where, tuple(self.path))


@dataclass
class Tree:
    """The contents of a deploy directory."""

    root: str
    modules: dict = field(default_factory=dict)  # Path -> Item
    procs: dict = field(default_factory=dict)  # Path -> Item
    jobs: dict = field(default_factory=dict)  # (kind, group, node, Path) -> Item
    manages: set = field(default_factory=set)  # of "module", "procedure", "job"
    problems: list = field(default_factory=list)  # one-line messages


def read_tree(root):
    """Read the deploy directory ``root`` into a `Tree`.

    Raises `BadFile` only when ``root`` is not a directory or has none of
    ``procs/``, ``modules/`` and ``jobs.yaml``; every other problem is in
    ``tree.problems``.
    """
    if not os.path.isdir(root):
        raise BadFile(f"{root}: not a directory")
    tree = Tree(root=root)
    found = False
    for sub, kind in (("modules", "module"), ("procs", "procedure")):
        d = os.path.join(root, sub)
        if os.path.lexists(d):  # lexists: a dangling or outside link is refused, not skipped
            found = True
            tree.manages.add(kind)
            _read_code_dir(tree, d, sub, kind)
    jobs = os.path.join(root, "jobs.yaml")
    if os.path.lexists(jobs):
        found = True
        tree.manages.add("job")
        _read_jobs(tree, jobs)
    if not found:
        raise BadFile(f"{root}: has none of procs/, modules/, jobs.yaml: nothing to deploy")
    return tree


def _outside(tree, full):
    """A problem if ``full`` is, or leads by a symlink, outside the deploy
    directory or is no regular file or directory (a fifo, a device, a
    socket, a dangling link); else None."""
    rel = os.path.relpath(full, tree.root)
    real = os.path.realpath(full)
    top = os.path.realpath(tree.root)
    if os.path.commonpath([real, top]) != top:
        return f"{rel}: a symlink to {real}, outside {tree.root}: refused"
    try:
        mode = os.stat(full).st_mode
    except OSError as exc:
        return f"{rel}: {exc.strerror or exc}"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"{rel}: not a regular file (a fifo, device or socket): refused"
    return None


def _files(tree, base):
    """The files below ``base`` to read, in order; symlinks are followed
    only while they stay inside the deploy directory, and special files
    are refused (both are problems of the tree, so nothing is written)."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop, or a second way to one directory
            tree.problems.append(f"{os.path.relpath(dirpath, tree.root)}: the same directory as another one: refused")
            dirnames[:] = []
            continue
        seen.add(real)
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".") or d == "__pycache__":
                continue
            problem = _outside(tree, os.path.join(dirpath, d))
            if problem:
                tree.problems.append(problem)
            else:
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if f.startswith(".") or f.endswith(_IGNORED_SUFFIXES) or f.upper().startswith("README"):
                continue
            full = os.path.join(dirpath, f)
            problem = _outside(tree, full)
            if problem:
                tree.problems.append(problem)
                continue
            yield full


def _read_code_dir(tree, base, sub, kind):
    items = tree.modules if kind == "module" else tree.procs
    problem = _outside(tree, base) or (None if os.path.isdir(base) else f"{sub}: not a directory")
    if problem:
        tree.problems.append(problem)
        return
    for full in _files(tree, base):
        rel = os.path.relpath(full, tree.root)
        parts = os.path.relpath(full, base).split(os.sep)
        if not parts[-1].endswith(".py"):
            tree.problems.append(f"{rel}: not a .py file (a {kind} is NAME.py)")
            continue
        parts[-1] = parts[-1][:-3]
        try:
            path = _name_of(parts, kind, rel)
            if path in items:
                raise CodeError(f"{rel}: {kind} {path} also comes from {items[path].source}")
            text = read_source(full, rel)
            if kind == "module":
                meta = read_header(text, rel, MODULE_KEYS)
                value = module_value(path, text, requires=meta.get("requires") or (), info=meta.get("info"))
            else:
                meta = read_header(text, rel, PROC_KEYS)
                value = procedure_value(path, text, **procedure_fields(meta, rel))
        except CompileError as exc:
            exc.filename = rel
            tree.problems.append(str(exc))
            continue
        except CodeError as exc:
            msg = str(exc)
            tree.problems.append(msg if msg.startswith(rel) else f"{rel}: {msg}")
            continue
        items[path] = Item(kind, path, rel, value)


def _name_of(parts, kind, rel):
    if kind == "module":
        if parts[-1] == "__init__":
            parts = parts[:-1]
            if not parts:
                raise InputRefused(f"{rel}: a module needs a name (modules/NAME/__init__.py)")
        bad = [p for p in parts if not p.isidentifier()]
        if bad:
            raise InputRefused(f"{rel}: {bad[0]!r} is not a Python name, so no module can be imported as it")
    else:
        bad = [p for p in parts if "." in p or not p or not p.isprintable()]
        if bad:
            raise InputRefused(f"{rel}: {bad[0]!r} cannot be part of a procedure's name (no dots)")
        if parts[-1] == "__init__":
            raise InputRefused(f"{rel}: procedures are NAME.py; __init__.py means nothing here")
    return Path.build(parts)


def _read_jobs(tree, filename):
    rel = os.path.relpath(filename, tree.root)
    problem = _outside(tree, filename) or (f"{rel}: not a file" if os.path.isdir(filename) else None)
    if problem:
        tree.problems.append(problem)
        return
    try:
        text = read_source(filename, rel)
        doc = yload(text) if text.strip() else {}
    except CodeError as exc:
        tree.problems.append(str(exc))
        return
    except Exception as exc:  # ruyaml's errors have no useful common base
        tree.problems.append(f"{rel}: not YAML: {first_line(exc)}")
        return
    if doc is None:
        doc = {}
    if not isinstance(doc, dict) or set(doc) - {"defaults", "jobs"}:
        tree.problems.append(f"{rel}: must be a mapping with 'jobs' (a list) and optional 'defaults'")
        return
    defaults = doc.get("defaults") or {}
    jobs = doc.get("jobs") or []
    if not isinstance(defaults, dict) or not isinstance(jobs, list):
        tree.problems.append(f"{rel}: 'defaults' must be a mapping and 'jobs' a list")
        return
    for n, job in enumerate(jobs, 1):
        if not isinstance(job, dict):
            tree.problems.append(f"{rel}: job {n}: must be a mapping of job settings")
            continue
        label = f"{rel}: job {n}" + (f" ({job['path']})" if isinstance(job.get("path"), str) else "")
        try:
            item = _job_item(dict(defaults, **job), rel, label)
        except CodeError as exc:
            tree.problems.append(f"{label}: {exc}")
            continue
        k = item.where + (tuple(item.path),)
        if k in tree.jobs:
            tree.problems.append(f"{label}: the same job as {tree.jobs[k].source}")
            continue
        tree.jobs[k] = item


_PLACE_KEYS = ("path", "group", "node", "all_nodes")


def _job_item(fields, rel, label):
    unknown = set(fields) - set(JOB_FIELDS) - set(_PLACE_KEYS)
    if unknown:
        raise InputRefused(f"unknown setting {', '.join(sorted(map(str, unknown)))}")
    path = fields.pop("path", None) or fields.get("code")
    if path is None:
        raise InputRefused("needs 'code' (the procedure) or 'path'")
    fields.setdefault("code", path)
    group = str(fields.pop("group", "default"))
    node = fields.pop("node", None)
    if fields.pop("all_nodes", False) or node == "-":
        where = ("all", group, None)
    elif node is not None:
        where = ("single", group, str(node))
    else:
        where = ("any", group, None)
    target_now = False
    if "target" in fields:
        fields["target"], target_now = _target(fields["target"])
    pin = fields.pop("pin", False)
    if pin not in (True, False, None):
        raise InputRefused("pin must be true or false (deploy pins the hash of what it deploys)")
    value = job_value({**JOB_DEFAULTS, **fields})
    return Item("job", as_path(str(path), "job"), label, value, where, target_now, bool(pin))


def _target(t):
    """``now`` (start when deployed: a stored start time is kept), ``never``,
    an ISO time or seconds since the epoch -> (timestamp, is_now)."""
    if isinstance(t, str) and t.strip().lower() == "now":
        return 0, True
    if t is None or (isinstance(t, str) and t.strip().lower() == "never"):
        return 0, False
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return t, False
    if isinstance(t, datetime.datetime):
        return t.timestamp(), False
    try:
        return datetime.datetime.fromisoformat(str(t).strip()).timestamp(), False
    except ValueError:
        raise InputRefused(f"target {t!r}: use now, never, an ISO time or seconds since the epoch") from None
