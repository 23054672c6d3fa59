"""What deleted jobs left behind when no runner saw them go.

A runner that sees a job's entry deleted forgets the job (its state, the
output of its runs, its error record: `_lifecycle.Lifecycle.forget`).  A
job deleted while none of its runners ran left all that in the store for
good: every ``run delete`` done while a node was down added entries.  So
a runner that starts forgets, once, the states of its group without a
runner entry that no other node holds, and the output of such jobs
(also without a state: a runner stopped between writing a run's output
and its state) (`forget_orphans`).
"""

import logging
from typing import TYPE_CHECKING

import anyio
from moat.util import NotGiven, Path

from distkv_ext.codekit.store.entries import list_entries

from . import _output
from ._layout import output_path

if TYPE_CHECKING:
    from ._root import _RunnerRoot

logger = logging.getLogger(__name__)

__all__ = ["forget_orphans"]


async def forget_orphans(root: "_RunnerRoot") -> int:
    """Forget every job whose state ``root`` mirrors but whose runner
    entry is gone, unless the state names another node as running it
    (that one forgets it when its run ends); return how many.  A store
    error is logged: the runner goes on without (it runs at every start)."""
    try:
        return await _forget_orphans(root)
    except Exception as exc:
        logger.warning("%s: could not forget deleted jobs: %r", root.node, exc)
        return 0


async def _forget_orphans(root: "_RunnerRoot") -> int:
    states = root.state
    if states is None:
        return 0
    gone = 0
    for state in list(states.all_children):
        job = tuple(state.job_path)
        entry = root.follow(job, create=False)
        if entry is not None and entry.value is not NotGiven:
            continue
        if state.value is NotGiven or state.node not in (None, root.node):
            continue
        with anyio.move_on_after(max(root.config.timeout, 5)):
            try:
                await state.delete()
            except Exception as exc:  # re-created and claimed meanwhile, or the server went away
                logger.debug("%s: state of deleted job %s: %r", root.node, Path.build(job), exc)
                continue  # its outputs and error record may be a new job's
            base = output_path(root.config.output, root.state_subpath, job, 0)[:-1]
            await _output.forget_runs(root.client, base)
            try:
                await root.err.record_working("run", root._path + job)
            except Exception as exc:
                logger.debug("record_working failed: %r", exc)
        gone += 1
    gone += await _forget_outputs(root)
    if gone:
        logger.info("%s: forgot %d deleted job(s) of %s", root.node, gone, Path.build(root.state_subpath))
    return gone


async def _forget_outputs(root: "_RunnerRoot") -> int:
    """Delete the outputs of jobs without a runner entry whose state (if
    any) names no other node; return for how many jobs."""
    base = root.config.output + tuple(root.state_subpath)
    jobs = set()
    async for p, v in list_entries(root.client, base):  # listed first: see `_output.forget_runs`
        if len(p) >= 2 and _output.is_run(p[-1:], v):
            jobs.add(tuple(p[:-1]))
    gone = 0
    for job in sorted(jobs, key=str):
        entry = root.follow(job, create=False)
        if entry is not None and entry.value is not NotGiven:
            continue
        state = root.state_for(job, create=False)
        if state is not None and state.value is not NotGiven and state.node not in (None, root.node):
            continue
        with anyio.move_on_after(max(root.config.timeout, 5)):
            if await _output.forget_runs(root.client, base + job):
                gone += 1
    return gone
