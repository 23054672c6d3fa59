"""Runners: keep stored procedures running on one, any or all nodes.

Public API (the names of DistKV 0.65's ``distkv.runner``)::

    cr = await CodeRoot.as_handler(client)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "boiler"), code=cr)
    job = r.follow(P("pump"), create=True)
    job.code = P("heating.pump"); job.data = {"speed": 3}
    await job.run_at(time.time())
    ... job.state.result, job.state.node ...

See `AnyRunnerRoot` (one live node runs each job, fast failover, load
balancing), `SingleRunnerRoot`, `AllRunnerRoot`, and `RunnerEntry` /
`StateEntry` for the stored fields.
"""

from ._assign import owner
from ._entry import RunnerEntry, StateEntry, next_start, retry_delay
from ._group import Group, GroupMembers
from ._job import ErrorRecorded, JobContext
from ._root import RUNNER_DEFAULTS, AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from ._state import StateRoot

__all__ = [
    "AnyRunnerRoot",
    "SingleRunnerRoot",
    "AllRunnerRoot",
    "RunnerEntry",
    "StateEntry",
    "StateRoot",
    "Group",
    "GroupMembers",
    "JobContext",
    "ErrorRecorded",
    "RUNNER_DEFAULTS",
    "next_start",
    "retry_delay",
    "owner",
]
