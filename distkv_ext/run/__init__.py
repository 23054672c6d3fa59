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
below ``runner:``.  ``distkv client run all`` is `run_daemon`; the status
page (`distkv_ext.web`) hears groups through `GroupObserver`.
"""

from ._admin import ErrorRecorded, JobContext
from ._assign import owner
from ._config import RUNNER_DEFAULTS, RunnerConfig
from ._connwatch import watch_connection
from ._control import JobRunning, resume_job, trigger_job
from ._daemon import ALL_KINDS, kinds_text, run_daemon, status_pages
from ._entry import RunnerEntry, StateEntry
from ._explain import STATUS_WORDS, explain_job, placement_problem, status_word
from ._group import Group, NameClash
from ._groupauth import GroupKeys, new_group_key
from ._layout import (
    CALENDAR_FIELDS,
    JOB_FIELDS,
    KINDS,
    NEW_JOB_DEFAULTS,
    OUTPUT_PREFIX,
    PAUSE_PREFIX,
    RUN_PREFIX,
    STATE_PREFIX,
    WEB_PREFIX,
    entry_problem,
    job_field,
    job_name,
    job_value,
    output_path,
    pause_path,
    pause_prefix,
    runner_subpath,
    split_job_path,
    stamp_target,
)
from ._liveness import GroupHeard, hear_groups, hear_groups_as_configured
from ._members import GroupMembers
from ._metrics import CLAIM_BUCKETS, METRICS
from ._next import MAX_NEXT_STARTS, NextStarts, job_next_starts, next_starts
from ._observe import GroupObserver, MemberSeen
from ._ops import (
    all_states,
    auth_words,
    follow_output,
    get_job,
    group_auth,
    job_output,
    job_states,
    list_jobs,
    remove_job,
    states_of,
    store_job,
    unsupplied_variables,
)
from ._output import TRACEBACK_STREAM
from ._pause import pause_of, pause_reason
from ._pauseops import (
    all_pauses,
    group_pauses,
    job_pause,
    pause_group,
    pause_job,
    pauses_by_group,
    unpause_group,
    unpause_job,
)
from ._policy import POLICIES
from ._procs import JobRef, ProcedureInUse, delete_procedure, jobs_running, revert_pinned_procedure
from ._root import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot
from ._schedule import next_start, retry_delay
from ._sdnotify import notify as sd_notify
from ._sdnotify import watchdog_interval
from ._state import StateRoot
from ._writer import calendar_defaults, with_calendar_defaults

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
    "ALL_KINDS",
    "kinds_text",
    "status_pages",
    "sd_notify",
    "watchdog_interval",
    "NameClash",
    "watch_connection",
    # watching a group without joining it, and the metrics
    "GroupObserver",
    "GroupHeard",
    "hear_groups",
    "hear_groups_as_configured",
    "MemberSeen",
    "group_topic",
    "METRICS",
    "CLAIM_BUCKETS",
    # where jobs live, what they hold
    "RUN_PREFIX",
    "STATE_PREFIX",
    "OUTPUT_PREFIX",
    "KINDS",
    "JOB_FIELDS",
    "CALENDAR_FIELDS",
    "NEW_JOB_DEFAULTS",
    "calendar_defaults",
    "with_calendar_defaults",
    "job_value",
    "stamp_target",
    "job_field",
    "entry_problem",
    "job_name",
    "runner_subpath",
    "split_job_path",
    "output_path",
    "WEB_PREFIX",
    "PAUSE_PREFIX",
    "pause_path",
    "pause_prefix",
    "TRACEBACK_STREAM",
    # job operations (what ``distkv client run`` calls)
    "store_job",
    "unsupplied_variables",
    "get_job",
    "remove_job",
    "resume_job",
    "trigger_job",
    "JobRunning",
    # pauses (``run pause`` / ``run resume``)
    "pause_job",
    "pause_group",
    "unpause_job",
    "unpause_group",
    "job_pause",
    "group_pauses",
    "all_pauses",
    "pauses_by_group",
    "pause_of",
    "pause_reason",
    "list_jobs",
    "job_states",
    "all_states",
    "states_of",
    "explain_job",
    "placement_problem",
    # calendar jobs: their next starts (``run next``)
    "next_starts",
    "job_next_starts",
    "NextStarts",
    "MAX_NEXT_STARTS",
    "group_auth",
    "auth_words",
    "job_output",
    "follow_output",
    # procedures and the jobs that run them (``code delete``, ``code revert``)
    "JobRef",
    "ProcedureInUse",
    "jobs_running",
    "delete_procedure",
    "revert_pinned_procedure",
    "status_word",
    "STATUS_WORDS",
]


def group_topic(kind: str, group: object, node: object = None) -> tuple[str, ...]:
    """The message topic of the runners of ``kind`` ("any", "all",
    "single") in ``group`` (single-node: of ``node``), as `Group` and
    `GroupObserver` use it."""
    return POLICIES[kind].group_topic(runner_subpath(kind, group, node))
