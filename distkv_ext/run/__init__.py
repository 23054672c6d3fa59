"""Runners: keep stored procedures running on one, any or all nodes.

Public API (the names of DistKV 0.65's ``distkv.runner``)::

    cr = await CodeRoot.as_handler(client)
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "boiler"), code=cr)
    job = r.follow(P("pump"), create=True)
    job.code = P("heating.pump"); job.data = {"speed": 3}
    await job.run_at(time.time())
    ... job.state.result, job.state.node ...

See `AnyRunnerRoot` (one live node runs each job, fast failover, load
balancing), `SingleRunnerRoot`, `AllRunnerRoot`, `RunnerEntry` /
`StateEntry` for the stored fields, and `RunnerConfig` for the settings
below ``runner:``.
"""

from ._assign import owner
from ._config import RUNNER_DEFAULTS, RunnerConfig
from ._daemon import run_daemon
from ._entry import RunnerEntry, StateEntry, next_start, retry_delay
from ._group import Group, GroupMembers
from ._groupauth import GroupKeys, new_group_key
from ._job import ErrorRecorded, JobContext
from ._layout import (
    JOB_FIELDS,
    KINDS,
    NEW_JOB_DEFAULTS,
    OUTPUT_PREFIX,
    RUN_PREFIX,
    STATE_PREFIX,
    job_name,
    job_value,
    output_path,
    runner_subpath,
    split_job_path,
)
from ._ops import (
    all_states,
    auth_words,
    explain_job,
    follow_output,
    get_job,
    group_auth,
    job_output,
    job_states,
    list_jobs,
    remove_job,
    states_of,
    store_job,
)
from ._root import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from ._state import StateRoot

__all__ = [
    # handlers (DistKV's names)
    "AnyRunnerRoot",
    "SingleRunnerRoot",
    "AllRunnerRoot",
    "RunnerEntry",
    "StateEntry",
    "StateRoot",
    "Group",
    "GroupMembers",
    "GroupKeys",
    "new_group_key",
    "JobContext",
    "ErrorRecorded",
    "RunnerConfig",
    "RUNNER_DEFAULTS",
    "next_start",
    "retry_delay",
    "owner",
    "run_daemon",
    # where jobs live, what they hold
    "RUN_PREFIX",
    "STATE_PREFIX",
    "OUTPUT_PREFIX",
    "KINDS",
    "JOB_FIELDS",
    "NEW_JOB_DEFAULTS",
    "job_value",
    "job_name",
    "runner_subpath",
    "split_job_path",
    "output_path",
    # job operations (what ``distkv client run`` calls)
    "store_job",
    "get_job",
    "remove_job",
    "list_jobs",
    "job_states",
    "all_states",
    "states_of",
    "explain_job",
    "group_auth",
    "auth_words",
    "job_output",
    "follow_output",
]
