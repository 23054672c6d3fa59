"""How a runner root takes part in its group (`join_group`): the `Group`
of its heartbeats and claims, wired to its scheduler, with its runner
record, its key and its tags (see `_group`)."""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from moat.util import Path

from distkv_ext.codekit.core.signing import key_id

from ._group import Group

if TYPE_CHECKING:
    from ._root import _RunnerRoot

logger = logging.getLogger(__name__)

__all__ = ["join_group"]


def join_group(root: "_RunnerRoot", name: str, records: Path, on_lost: Callable[[BaseException], None]) -> Group:
    """The group ``name`` (``any.GROUP``) of ``root``, not yet running
    (``await tg.start(group.run)``), its runner records below ``records``;
    ``on_lost``: see `Group`.  An unauthenticated one is logged as such."""
    policy, cfg = root.policy, root.config
    group = Group(
        root.client,
        root.group_topic(),
        root.node,
        weight=cfg.weight,
        ping=cfg.heartbeat,
        timeout=cfg.timeout,
        on_change=root.scheduler.group_changed,
        load=lambda: len(root.scheduler.jobs),
        on_claim=root.scheduler.claim_message if policy.claims else None,
        on_lost=on_lost,
        keys=root.group_keys,
        records=records,
        record={
            "kind": policy.kind,
            "trusted_keys": sorted(key_id(k) for k in cfg.trusted),
            "tags": list(cfg.tags),
        },
        tags=cfg.tags,
    )
    if not root.group_keys.keyed:
        logger.warning(
            "%s: group %s is UNAUTHENTICATED (no runner.group_key): anybody who can reach"
            " a DistKV server or the MQTT broker can speak in it; see the README, 'Trust'",
            root.node,
            name,
        )
    return group
