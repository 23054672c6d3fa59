"""What differs between the three kinds of runner: one `RunnerPolicy` each.

The engine (roots, scheduler, the runs) asks the policy of its root
instead of testing which kind it is:

=====================  ==========  ==========  ===============
                       any-node    all-node    single-node
=====================  ==========  ==========  ===============
heartbeat group        yes         yes         yes (of NODE's runners)
claims on the channel  yes         no          no
shares the jobs        yes         no          no
state per member       no          yes         no
jobs hear the group    yes         yes         no
node by default        the client  the client  NODE of ``at NODE GROUP``
=====================  ==========  ==========  ===============

"Shares the jobs" means: the live members split the jobs among them
(`_assign`), a member runs only the jobs assigned to it, takes over those
of a member that is gone, moves running jobs when the assignment changes
(rebalance), and stops them when it is cut off from the group.

A single-node runner's heartbeat group (topic ``... at NODE GROUP``) has
one member when all is well: it is there so that a second runner of the
same NODE and GROUP (say a ``run all -g GROUP``, which serves this
machine's single-node jobs too, beside an old ``run all -g GROUP -n
NODE``) is noticed and stops (`NameClash`) instead of running every job
twice, and so that the runner notices a dead server.  Its jobs are not
told about it ("jobs hear the group": the group's state and membership
events in ``_info``): it says nothing about their world.

"Kind" here is the runner kind ("any", "all", "single"), as in
`runner_subpath` and on the command line.  The group channel's messages
have a *type* ("claim", "held"), not a kind.
"""

import dataclasses
from typing import Any

__all__ = ["RunnerPolicy", "ANY", "ALL", "SINGLE", "POLICIES"]

#: the first elements of a group's message topic
TOPIC_PREFIX = ("distkv_code", "run")


@dataclasses.dataclass(frozen=True)
class RunnerPolicy:
    """The behaviour of one kind of runner (see the module doc)."""

    #: "any", "all" or "single"
    kind: str
    #: the runners of a group hear each other (heartbeats, `Group`)
    heartbeat_group: bool
    #: claim a job on the group's channel before starting it
    claims: bool
    #: the live members split the jobs (assignment, take-over, rebalance)
    shares_jobs: bool
    #: each member keeps its own state, below its name
    state_per_member: bool
    #: the node's name is the NODE of the subpath ``("at", NODE, GROUP)``
    node_in_subpath: bool
    #: the jobs get the group's state and membership changes in ``_info``
    jobs_hear_group: bool = True

    def state_subpath(self, subpath: tuple[Any, ...], node: str) -> tuple[Any, ...]:
        """Where the states of the jobs at ``subpath`` live (below the state
        prefix): the same subpath, plus ``node`` for per-member states."""
        return tuple(subpath) + (node,) if self.state_per_member else tuple(subpath)

    def group_topic(self, subpath: tuple[Any, ...]) -> tuple[str, ...]:
        """The message topic of the group that serves ``subpath``."""
        return (*TOPIC_PREFIX, *(str(x) for x in subpath))

    def default_node(self, client_name: str, subpath: tuple[Any, ...]) -> str:
        """This runner's node name when none is given: the DistKV client's
        name, or for single-node runners the NODE of ``("at", NODE, GROUP)``."""
        if self.node_in_subpath and len(subpath) >= 2 and subpath[0] == "at":
            return str(subpath[1])
        return client_name


ANY = RunnerPolicy(
    "any", heartbeat_group=True, claims=True, shares_jobs=True, state_per_member=False, node_in_subpath=False
)
ALL = RunnerPolicy(
    "all", heartbeat_group=True, claims=False, shares_jobs=False, state_per_member=True, node_in_subpath=False
)
SINGLE = RunnerPolicy(
    "single",
    heartbeat_group=True,
    claims=False,
    shares_jobs=False,
    state_per_member=False,
    node_in_subpath=True,
    jobs_hear_group=False,
)

#: kind -> policy
POLICIES: dict[str, RunnerPolicy] = {p.kind: p for p in (ANY, ALL, SINGLE)}
