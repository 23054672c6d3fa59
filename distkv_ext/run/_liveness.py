"""Which runners of a group are alive right now: `hear_groups`.

What the store says about a job ("running on r1", written by r1 when it
started the job) stays there when r1 dies: a runner killed with
``kill -9`` cannot take its claim back.  Only the group channel tells
whether r1 is still there: a live runner sends a heartbeat every
``runner.heartbeat`` seconds, and a runner not heard for
``runner.timeout`` seconds is gone (the rule the runners themselves
apply before one of them takes a job over).

`hear_groups` listens to the channels of some groups (read-only, as the
status page does, through `GroupObserver`) until every node it was asked
about has been heard, or for the group timeout at most.  So a command
that shows the status (``run why``, ``run list``) waits about one
heartbeat period when all is well, and the timeout when a runner is
gone, which is then certain.  No clock of another machine is read.
"""

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import anyio

from distkv_ext.codekit.core.errors import BadArguments

from ._config import RunnerConfig
from ._groupauth import GroupKeys
from ._layout import runner_subpath
from ._observe import GroupHeard, GroupObserver
from ._policy import POLICIES

__all__ = ["GroupHeard", "hear_groups", "hear_groups_as_configured"]

#: (kind, group, node): the group a job's runners form (node: single-node jobs' NODE)
GroupRef = tuple[str, Any, Any]


def _topic(ref: GroupRef) -> tuple[str, ...]:
    kind, group, node = ref
    return POLICIES[kind].group_topic(runner_subpath(kind, group, node))


async def hear_groups(
    client: Any,
    expect: Mapping[GroupRef, Iterable[str]],
    *,
    timeout: float,
    keys: GroupKeys | None = None,
    tags: Mapping[GroupRef, Iterable[Iterable[str]]] | None = None,
) -> dict[GroupRef, GroupHeard]:
    """Listen to the groups ``expect`` names (kind, group, node) at once,
    until every node named for a group has been heard and, where none is
    named, any one runner of it; or for ``timeout`` seconds (the groups'
    ``runner.timeout``) at most.  ``tags``: {group: tag sets}: also until,
    for each set, a member carrying all of its tags has been heard (jobs
    that require tags: so "no live member has tag relay" is said only
    after a whole timeout).  Groups without a channel (a kind that
    keeps none) are left out of the answer.  ``keys``: the groups'
    `GroupKeys` (from ``runner.group_key``)."""
    want = {ref: {str(n) for n in nodes} for ref, nodes in expect.items() if POLICIES[ref[0]].heartbeat_group}
    if not want:
        return {}
    news = [anyio.Event()]  # set when a group's live members change

    def changed() -> None:
        news[0].set()

    observers = {ref: GroupObserver(client, _topic(ref), timeout=timeout, keys=keys, on_change=changed) for ref in want}

    needs = {ref: [frozenset(t) for t in sets] for ref, sets in (tags or {}).items()}

    def satisfied(ref: GroupRef) -> bool:
        h = observers[ref].heard_now()
        tagged = all(any(need <= have for have in h.tags.values()) for need in needs.get(ref, ()))
        return bool(h.live) and want[ref] <= h.live and tagged

    async with anyio.create_task_group() as tg:
        for obs in observers.values():
            await tg.start(obs.run)
        with anyio.move_on_after(timeout):  # each listened this long when it ends
            while not all(satisfied(ref) for ref in want):
                await news[0].wait()
                news[0] = anyio.Event()
        tg.cancel_scope.cancel()
    res = {}
    for ref, obs in observers.items():
        h = obs.heard_now()
        res[ref] = dataclasses.replace(h, complete=h.complete or satisfied(ref))
    return res


async def hear_groups_as_configured(
    client: Any,
    expect: Mapping[GroupRef, Iterable[str]],
    runner_cfg: Mapping[str, Any] | None,
    tags: Mapping[GroupRef, Iterable[Iterable[str]]] | None = None,
) -> dict[GroupRef, GroupHeard]:
    """`hear_groups` with the timeout and the group keys of the ``runner:``
    configuration ``runner_cfg`` (the runners'; a user without the key
    files hears keyed groups as `GroupHeard.deaf`).  A configuration the
    runners would refuse gives the defaults: this only shows."""
    try:
        rc = RunnerConfig.load(dict(runner_cfg or {}))
    except BadArguments:
        rc = RunnerConfig()
    try:
        keys = GroupKeys.load(rc.group_key, rc.group_key_next)
    except BadArguments:  # a key file we may not read: we hear what we can
        keys = None
    return await hear_groups(client, expect, timeout=rc.timeout, keys=keys, tags=tags)
