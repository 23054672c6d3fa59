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

import os
import stat
from dataclasses import dataclass, field

from moat.util import Path

from distkv_ext.code import procedure_value
from distkv_ext.codekit.core.checks import module_name
from distkv_ext.codekit.core.errors import BadFile, CodeError, CompileError, InputRefused
from distkv_ext.codekit.core.source import read_source
from distkv_ext.module import module_value

from ._header import MODULE_KEYS, PROC_KEYS, module_fields, procedure_fields, read_header
from ._jobs import JOB_DEFAULTS, read_jobs

__all__ = ["Item", "Tree", "read_tree", "JOB_DEFAULTS"]

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
    name: str = ""  # the tree's default name: the directory's (see _manifest)
    modules: dict = field(default_factory=dict)  # Path -> Item
    procs: dict = field(default_factory=dict)  # Path -> Item
    jobs: dict = field(default_factory=dict)  # (kind, group, node, Path) -> Item
    manages: set = field(default_factory=set)  # of "module", "procedure", "job"
    problems: list = field(default_factory=list)  # one-line messages


def read_tree(root, calendar=None):
    """Read the deploy directory ``root`` into a `Tree`.  ``calendar()``:
    the writer's zone and place for calendar jobs (see `read_jobs`).

    Raises `BadFile` only when ``root`` is not a directory or has none of
    ``procs/``, ``modules/`` and ``jobs.yaml``; every other problem is in
    ``tree.problems``.
    """
    if not os.path.isdir(root):
        raise BadFile(f"{root}: not a directory")
    tree = Tree(root=root, name=os.path.basename(os.path.abspath(root)))
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
        rel = os.path.relpath(jobs, tree.root)
        problem = _outside(tree, jobs) or (f"{rel}: not a file" if os.path.isdir(jobs) else None)
        if problem:
            tree.problems.append(problem)
        else:
            read_jobs(tree, jobs, rel, _job_item, calendar)
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
            header = read_header(text, rel, MODULE_KEYS if kind == "module" else PROC_KEYS)
            fields = module_fields(header) if kind == "module" else procedure_fields(header)
            tree.problems += header.problems  # every problem of the file, then the code's
            if kind == "module":
                value = module_value(path, text, **fields)
            else:
                value = procedure_value(path, text, **fields)
            if header.problems:
                continue
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
        try:
            module_name(parts)
        except InputRefused as exc:
            raise InputRefused(f"{rel}: {exc}") from None
    else:
        bad = [p for p in parts if "." in p or not p or not p.isprintable()]
        if bad:
            raise InputRefused(f"{rel}: {bad[0]!r} cannot be part of a procedure's name (no dots)")
        if parts[-1] == "__init__":
            raise InputRefused(f"{rel}: procedures are NAME.py; __init__.py means nothing here")
    return Path.build(parts)


def _job_item(path, source, value, where, target_now, pin):
    return Item("job", path, source, value, where, target_now, pin)
