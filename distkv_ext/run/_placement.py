"""Where a job may and should run, by tags: `Placement`.

A runner carries tags (``run all --tag relay --tag room=kitchen``, or
``runner: {tags: [...]}``), which its group hears with every heartbeat.
A job's entry may say:

* ``require_tags``: it runs only on a member that carries all of them.
  An any-node job goes to one of those members (the others never take
  it, not even when they are the only ones left); an all-node job runs on
  each of them and not on the others; a single-node job runs on its node
  only if the node has them.
* ``prefer_tags``: an any-node job goes to one of the eligible members
  that carry all of these, while any such member is live (and takes
  jobs: weight > 0); else to another eligible member.  When a preferred
  member comes back, a job running elsewhere moves to it only if
  ``runner.rebalance`` is on (as any job moves to a member that joins).
  For all-node and single-node jobs a preference changes nothing.

Pure functions of the entry's value and the members' tags: every runner
of a group computes the same answer from the same view (`_assign`).
"""

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.whenchecks import tag_list

__all__ = [
    "Placement",
    "placement_of",
    "has_tags",
    "lacking",
    "candidates",
    "allowed_nodes",
    "nobody_has",
    "lacks_text",
]


@dataclasses.dataclass(frozen=True)
class Placement:
    """The tags a job requires and prefers (each in the order stored)."""

    require: tuple[str, ...] = ()
    prefer: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        """Does the job say anything about where it runs?"""
        return bool(self.require or self.prefer)


#: A job that says nothing about where it runs.
ANYWHERE = Placement()


def placement_of(value: Any) -> Placement:
    """The `Placement` of a stored runner entry's value (anything: a
    value that is no mapping, or has no tags, places anywhere).  Raises
    `InputRefused` for tags that are no list of tags (`entry_problem`
    reports such an entry before the scheduler asks)."""
    if not isinstance(value, Mapping):
        return ANYWHERE
    req, pref = value.get("require_tags"), value.get("prefer_tags")
    if not req and not pref:
        return ANYWHERE
    return Placement(
        tuple(tag_list(req, "require_tags")) if req else (),
        tuple(tag_list(pref, "prefer_tags")) if pref else (),
    )


def has_tags(value: Any) -> bool:
    """Does a stored entry's value require or prefer tags?  (Cheap: most do not.)"""
    return isinstance(value, Mapping) and bool(value.get("require_tags") or value.get("prefer_tags"))


def lacking(placement: Placement, tags: Collection[str]) -> tuple[str, ...]:
    """The tags ``placement`` requires that ``tags`` (a member's) lack."""
    return tuple(t for t in placement.require if t not in tags)


def candidates(
    placement: Placement, nodes: Mapping[str, float], tags: Mapping[str, Collection[str]]
) -> dict[str, float]:
    """The members of ``nodes`` ({name: weight}) that may take the job
    now, with their weights: those carrying every required tag, and of
    those, the ones with every preferred tag and a positive weight if
    there are any.  ``tags``: {name: its tags} (a name missing: none)."""
    eligible = {n: w for n, w in nodes.items() if not lacking(placement, tags.get(n, ()))}
    if placement.prefer:
        preferred = {n: w for n, w in eligible.items() if w > 0 and set(placement.prefer) <= set(tags.get(n, ()))}
        if preferred:
            return preferred
    return eligible


def allowed_nodes(
    jobs: Iterable[tuple[str, Any]], nodes: Mapping[str, float], tags: Mapping[str, Collection[str]]
) -> dict[str, tuple[str, ...]]:
    """{job: the members of ``nodes`` it may go to} (`candidates`) for the
    jobs of ``jobs`` ((name, stored value) pairs) that require or prefer
    tags: what `_assign.assign` takes as ``allowed``.  A job whose tags
    are no list of tags may go nowhere."""
    res: dict[str, tuple[str, ...]] = {}
    for name, value in jobs:
        if not has_tags(value):
            continue
        try:
            res[name] = tuple(candidates(placement_of(value), nodes, tags))
        except InputRefused:
            res[name] = ()
    return res


def nobody_has(placement: Placement, tags: Mapping[str, Collection[str]]) -> str | None:
    """Why no member of ``tags`` ({live member: its tags}) may run a job
    of ``placement``, in words (``no live member has tag relay``); None if
    one may (or the job requires nothing).  Names the required tags no
    member has; if each is somewhere but no member has all of them, says so."""
    if not placement.require or any(not lacking(placement, t) for t in tags.values()):
        return None
    missing = [t for t in placement.require if not any(t in have for have in tags.values())]
    if missing:
        return f"no live member has {_tags_text(missing)}"
    return f"no live member has all of the tags {', '.join(placement.require)}"


def lacks_text(node: str, missing: Collection[str]) -> str:
    """``r2 lacks tag relay``: why the runner of ``node`` does not run a job."""
    return f"{node} lacks {_tags_text(missing)}"


def _tags_text(tags: Collection[str]) -> str:
    return f"tag{'s' if len(tags) > 1 else ''} {', '.join(tags)}"
