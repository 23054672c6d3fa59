"""Operator actions on a job's state, without editing the job: `resume_job`.

A job's state is written by runners; these are the few writes an operator
makes to it, each conditional on the state being unchanged since it was
read (a runner writing at the same moment wins, and the operator is told
to try again: `Conflict`).
"""

from typing import Any

from moat.util import Path

from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.store.entries import get_entry, write_entry

from ._layout import RUN_PREFIX, STATE_PREFIX, runner_subpath
from ._ops import job_state_entries

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
