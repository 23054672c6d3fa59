"""Operator actions on a job's state, without editing the job: `resume_job`
(lift a quarantine) and `trigger_job` (one run now).

A job's state is written by runners; these are the few writes an operator
makes to it, each conditional on the state being unchanged since it was
read (a runner writing at the same moment wins, and the operator is told
to try again: `Conflict`).
"""

import datetime
import time
from typing import Any

from moat.util import Path

from distkv_ext.codekit.core.errors import InputRefused, NotFound
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.store.entries import get_entry, write_entry

from ._layout import RUN_PREFIX, STATE_PREFIX, entry_problem, runner_subpath
from ._ops import job_state_entries
from ._pause import operator
from ._policy import POLICIES
from ._registry import group_records

__all__ = ["resume_job", "trigger_job", "JobRunning"]


class JobRunning(InputRefused):
    """``run trigger`` of a job that runs right now: refused, nothing
    written (exit status 4).  Trigger it again once that run has ended."""


async def resume_job(
    client: Any,
    kind: str,
    group: Any,
    path: Any,
    *,
    node: Any = None,
    prefix: Path = RUN_PREFIX,
    state_prefix: Path = STATE_PREFIX,
) -> dict[str, bool]:
    """Lift the quarantine of the job at ``path`` (`_loopwatch`): its state
    forgets its stalls and says "resume", so a runner starts it at once.

    Returns {member or "": whether it was quarantined} for each state of
    the job (all-node jobs have one per member; a job that never ran has
    none).  Raises `NotFound` when there is no such job, `Conflict` when
    a runner wrote the state meanwhile.
    """
    path = as_path(path, "job")
    sub = Path.build(runner_subpath(kind, group, node))
    await get_entry(client, prefix + sub, path, "job")  # NotFound: no such job
    states = await job_state_entries(client, kind, group, path, node=node, prefix=state_prefix)
    done: dict[str, bool] = {}
    for member, p, value, chain in states:
        if not isinstance(value, dict) or not value.get("quarantined"):
            done[member] = False
            continue
        new = dict(value, quarantined=None, stalls=[], backoff=0, resume=True, reason="resumed by an operator")
        if new.get("node") is not None:  # cannot be (a quarantined job is not started): leave it
            done[member] = False
            continue
        await write_entry(client, state_prefix + sub, p, new, chain=chain)
        done[member] = True
    return done


async def trigger_job(
    client: Any,
    kind: str,
    group: Any,
    path: Any,
    *,
    node: Any = None,
    by: str | None = None,
    prefix: Path = RUN_PREFIX,
    state_prefix: Path = STATE_PREFIX,
) -> list[str]:
    """Ask for one run of the job at ``path`` now, without touching its
    schedule: the runner entry is not written, and the run leaves the
    target it last ran for as it was (a target still ahead, a repeat, a
    calendar slot: all stay as they were; a repeat counts from the end
    of the latest run, as always).  A paused job runs once too; a job
    that never ran (no state yet) works the same.

    The request is its state saying ``resume`` and ``triggered`` ("by
    USER@HOST at TIME"; ``by`` defaults to this USER@HOST), written only
    if the state is unchanged since it was read.  All-node jobs: every
    member runs it once (the members with a state, and the running
    runners of the group, from their records).

    Returns the members asked (all-node jobs: their names; else [""]).
    Raises `NotFound` when there is no such job (or no member of an
    all-node group is known), `JobRunning` when it runs right now (on
    any member: then nothing is written), `InputRefused` when it is
    quarantined (``run resume`` first) or its entry is unusable,
    `Conflict` when a runner wrote the state meanwhile.
    """
    path = as_path(path, "job")
    sub = Path.build(runner_subpath(kind, group, node))
    value, _ = await get_entry(client, prefix + sub, path, "job")  # NotFound: no such job
    problem = entry_problem(value)
    if problem is not None:
        raise InputRefused(f"job {path} is unusable: {problem}")
    states = await job_state_entries(client, kind, group, path, node=node, prefix=state_prefix)
    targets: dict[str, tuple[Path, Any, Any]] = {m: (p, v, chain) for m, p, v, chain in states}
    if POLICIES[kind].state_per_member:
        for rec in await group_records(client, state_prefix, runner_subpath(kind, group, node)):
            member = rec.get("node")
            if isinstance(member, str) and member and member not in targets:
                targets[member] = (Path(member, *path), None, None)
        if not targets:
            raise NotFound(
                "job", path, f"job {path}: no member of all-node group {group} is known (none ran it, none runs)"
            )
    elif "" not in targets:
        targets[""] = (path, None, None)  # never ran: a new state
    for member, (_, v, _) in sorted(targets.items()):
        st = v if isinstance(v, dict) else {}
        on = f" on {member}" if member else ""
        if isinstance(st.get("node"), str) and st["node"]:
            raise JobRunning(f"job {path} is running{on} (on {st['node']}): not triggered")
        if isinstance(st.get("quarantined"), str) and st["quarantined"]:
            raise InputRefused(f"job {path} is quarantined{on} ({st['quarantined']}): `run resume` first")
    when = datetime.datetime.fromtimestamp(time.time()).astimezone().isoformat(timespec="seconds")
    asked = f"by {by or operator()} at {when}"
    done = []
    for member, (p, v, chain) in sorted(targets.items()):
        st = dict(v) if isinstance(v, dict) else {}
        st.update(resume=True, triggered=asked, reason=f"triggered {asked}")
        await write_entry(client, state_prefix + sub, p, st, chain=chain)
        done.append(member)
    return done
