"""Operator actions on a job's state, without editing the job: `resume_job`.

A job's state is written by runners; these are the few writes an operator
makes to it, each conditional on the state being unchanged since it was
read (a runner writing at the same moment wins, and the operator is told
to try again: `Conflict`).
"""

from typing import Any

from moat.util import Path

from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.store.entries import get_entry, list_entries_with_chain, write_entry

from ._layout import RUN_PREFIX, STATE_PREFIX, runner_subpath
from ._policy import POLICIES

__all__ = ["resume_job"]


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
    states: list[tuple[str, Path, Any, Any]] = []
    if POLICIES[kind].state_per_member:
        async for p, v, chain in list_entries_with_chain(client, state_prefix + sub):
            if len(p) == len(path) + 1 and tuple(p[1:]) == tuple(path):
                states.append((str(p[0]), p, v, chain))
    else:
        async for p, v, chain in list_entries_with_chain(client, state_prefix + sub, path, max_depth=0):
            if tuple(p) == tuple(path):
                states.append(("", p, v, chain))
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
