"""Procedures and the runner entries that use them.

A runner entry holds no code, only the path of its procedure (and, when
pinned, the content hash of the version it may run).  So deleting a
procedure stops every job that runs it, and reverting a procedure stops
every job pinned to the version it replaces.  These operations look at
the runner entries first and refuse (`ProcedureInUse`, exit status 4,
naming the jobs) unless told otherwise; ``distkv client code delete``
and ``code revert`` call them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moat.util import Path

from distkv_ext.code import get_procedure, remove_procedure, revert_procedure
from distkv_ext.codekit.core.digest import content_hash, pin_hash, pin_matches
from distkv_ext.codekit.core.errors import Conflict, InputRefused, NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.store import history
from distkv_ext.codekit.store.entries import list_entries_with_chain, write_entry
from distkv_ext.module import snapshot

from ._layout import PROC_PREFIX, RUN_PREFIX, runner_subpath, split_job_path

__all__ = ["JobRef", "ProcedureInUse", "jobs_running", "delete_procedure", "revert_pinned_procedure"]


class ProcedureInUse(InputRefused):
    """A procedure that runner entries run (or are pinned to) is not
    deleted or reverted without being told to (exit status 4)."""


@dataclass(frozen=True)
class JobRef:
    """A runner entry as found in the store: where it is, its value and chain."""

    kind: str
    group: Any
    node: Any
    path: Path
    value: Any
    chain: Any

    @property
    def label(self) -> str:
        """``job PATH (any GROUP)``, ``job PATH (at NODE GROUP)``: as ``deploy`` names jobs."""
        place = f"at {self.node} {self.group}" if self.kind == "single" else f"{self.kind} {self.group}"
        return f"job {self.path} ({place})"

    @property
    def pin(self) -> str | None:
        """The content hash the job is pinned to, or None."""
        pin = self.value.get("pin") if isinstance(self.value, dict) else None
        return str(pin) if pin else None


def _code_of(value: Any) -> Path | None:
    code = value.get("code") if isinstance(value, dict) else None
    if isinstance(code, Path):
        return code
    if isinstance(code, (list, tuple)):
        return Path.build(code)
    return None


async def jobs_running(client: Any, code: Any, *, prefix: Path = RUN_PREFIX) -> list[JobRef]:
    """Every runner entry (of every kind and group) whose procedure is
    ``code``, sorted by label."""
    code = as_path(code, "procedure")
    res = []
    async for p, v, chain in list_entries_with_chain(client, prefix):
        parts = split_job_path(p)
        if parts is None or _code_of(v) != code:
            continue
        kind, group, node, job = parts
        res.append(JobRef(kind, group, node, job, v, chain))
    return sorted(res, key=lambda j: j.label)


def _names(jobs: Sequence[JobRef]) -> str:
    names = [j.label for j in jobs[:5]]
    if len(jobs) > 5:
        names.append(f"and {len(jobs) - 5} more")
    return ", ".join(names)


async def delete_procedure(
    client: Any, path: Any, *, force: bool = False, prefix: Path = PROC_PREFIX, job_prefix: Path = RUN_PREFIX
) -> Any:
    """Delete the procedure ``path`` (its last version goes to the history)
    and return its value.  Refused (`ProcedureInUse`, naming them) while
    runner entries run it, unless ``force``; `NotFound` if there is none."""
    path = as_path(path, "procedure")
    if not force:
        users = await jobs_running(client, path, prefix=job_prefix)
        if users:
            raise ProcedureInUse(f"{path} is run by {_names(users)}; use --force to delete it anyway")
    return await remove_procedure(client, path, prefix=prefix)


def _version_name(pin: str, current: Any, saved: Sequence[history.Version], lookup: Any) -> str:
    """Which version of a procedure ``pin`` fits, by its content hash (as
    ``code history`` shows it): the current one, a saved one, or none."""
    if current is not None and pin_matches(pin, current, lookup):
        return f"{content_hash(current)} (the current version)"
    for v in reversed(saved):
        if isinstance(v.get("value"), dict) and pin_matches(pin, v["value"], lookup):
            return f"{v.get('hash') or content_hash(v['value'])} (version {v['n']})"
    return f"{pin} (no saved version)"


async def revert_pinned_procedure(
    client: Any,
    path: Any,
    to: int | None = None,
    *,
    repin: bool = False,
    force: bool = False,
    prefix: Path = PROC_PREFIX,
    job_prefix: Path = RUN_PREFIX,
) -> tuple[str, Any, list[str]]:
    """`distkv_ext.code.revert_procedure`, minding the jobs pinned to it.

    Jobs pinned to a version other than the one brought back would no
    longer run.  Without ``repin`` or ``force`` that is refused
    (`ProcedureInUse`), naming each such job and the version it is pinned
    to; ``repin`` pins them to the version brought back (each write
    conditional on the job being unchanged, else `Conflict`); ``force``
    reverts and leaves the pins.  Returns (action, stored value, labels
    of the jobs repinned)."""
    path = as_path(path, "procedure")
    saved = await history.versions(client, "proc", path)
    rec = await history.pick(client, "proc", path, to)
    target = content_hash(rec["value"])
    mods, _ = await snapshot(client, proc_prefix=None)  # a pin covers the modules too
    pinned = [j for j in await jobs_running(client, path, prefix=job_prefix) if j.pin]
    stale = [j for j in pinned if not pin_matches(j.pin, rec["value"], mods.get)]
    if stale and not repin and not force:
        try:
            current = (await get_procedure(client, path, prefix=prefix))[0]
        except NotFound:
            current = None
        pins = "; ".join(f"{j.label} is pinned to {_version_name(str(j.pin), current, saved, mods.get)}" for j in stale)
        raise ProcedureInUse(
            f"reverting {path} to version {rec['n']} ({target}) stops jobs pinned to another version: {pins};"
            " --repin pins them to the reverted version, --force reverts anyway"
        )
    action, value = await revert_procedure(client, path, to, prefix=prefix)
    repinned: list[str] = []
    if repin:
        new = pin_hash(value, mods.get)
        for j in pinned:
            if j.pin == new:
                continue
            sub = Path.build(runner_subpath(j.kind, j.group, j.node))
            try:
                await write_entry(client, job_prefix + sub, j.path, dict(j.value, pin=new), chain=j.chain)
            except Conflict:
                raise Conflict(j.label, f"{j.label} was changed meanwhile; not repinned") from None
            repinned.append(j.label)
    return action, value, repinned
