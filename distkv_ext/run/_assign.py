"""Which live node runs which any-node job.

Every runner of a group computes the same assignment from the same view
(the jobs, the live members with their weights, and which node runs what
now), without talking to the others:

* Each node gets a *capacity*: its share of the jobs by weight, rounded
  up, so the jobs are spread by count (or weight), not by luck.
* A job that runs on a live node stays there while that node is within
  its capacity (jobs are not moved needlessly).
* Every other job goes to the node with the highest rendezvous score
  (``weight / -ln(h(job, node))``, ``h`` uniform in (0, 1)) that still has
  room.

So when a node joins, the others keep their jobs up to their new, smaller
capacity and only the excess moves, to the new node; when a node dies, only
its jobs move.

A job may be restricted to some of the nodes (its tags, `_placement`):
it stays on or goes to one of those only.  Restricted jobs are placed
before the others, so that the few nodes they may use have room for
them; if none of their nodes has room left, a job goes to the one of
them with the least jobs per weight (capacity is a target, a restriction
is not).  Without restrictions the assignment is as above.
"""

import functools
import hashlib
import math
from collections.abc import Iterable, Mapping

__all__ = ["owner", "score", "assign"]


@functools.lru_cache(maxsize=1 << 16)
def _unit(job: str, node: str) -> float:
    d = hashlib.blake2b(f"{job}\0{node}".encode(), digest_size=8).digest()
    # (0, 1): never 0 (log) nor 1 (division by zero below)
    return (int.from_bytes(d, "big") + 1) / (2**64 + 2)


def score(job: str, node: str, weight: float = 1.0) -> float:
    """The rendezvous score of ``node`` for ``job`` (higher wins)."""
    if weight <= 0:
        return float("-inf")
    return weight / -math.log(_unit(job, node))


def owner(job: str, nodes: Mapping[str, float]) -> str | None:
    """The node (a key of ``nodes``, {name: weight}) with the best score
    for ``job``, ignoring capacity; None if no node has a positive weight."""
    best, best_score = None, float("-inf")
    for node in sorted(nodes):
        s = score(job, node, nodes[node])
        if s > best_score:
            best, best_score = node, s
    return best if best_score > float("-inf") else None


@functools.lru_cache(maxsize=1 << 14)
def _preference(job: str, nodes: tuple[tuple[str, float], ...]) -> tuple[str, ...]:
    """The nodes of ``nodes`` ((name, weight) pairs) by score for ``job``,
    best first (cached: the scheduler asks for every job on every change)."""
    weights = dict(nodes)
    return tuple(sorted(weights, key=lambda n: score(job, n, weights[n]), reverse=True))


def assign(
    jobs: Iterable[str],
    nodes: Mapping[str, float],
    current: Mapping[str, str] | None = None,
    allowed: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, str | None]:
    """Assign every job in ``jobs`` to a node of ``nodes`` ({name: weight}).

    ``current``: {job: node running it now}.  ``allowed``: {job: the
    nodes it may run on} for restricted jobs (others may run anywhere).
    Returns {job: node}; jobs map to None when none of their nodes has a
    positive weight.
    """
    current = current or {}
    allowed = allowed or {}
    active = {n: w for n, w in nodes.items() if w > 0}
    names = sorted(jobs)
    if not active:
        return {j: None for j in names}
    total = sum(active.values())
    cap = {n: math.ceil(len(names) * w / total) for n, w in active.items()}
    used = {n: 0 for n in active}
    ranked = tuple(sorted(active.items()))
    choice = {j: ranked for j in names}  # (node, weight) pairs each job may use
    for j, ok in allowed.items():
        if j in choice:
            may = set(ok)
            choice[j] = tuple(nw for nw in ranked if nw[0] in may)
    res: dict[str, str | None] = {}
    for j in names:  # stay where you are, within capacity (and where it may run)
        n = current.get(j)
        if n is not None and n in active and used[n] < cap[n] and (choice[j] is ranked or (n, active[n]) in choice[j]):
            res[j] = n
            used[n] += 1
    restricted = sorted((j for j in names if j in allowed), key=lambda j: (len(choice[j]), j))
    for j in [*restricted, *(j for j in names if j not in allowed)]:
        if j in res:
            continue
        if not choice[j]:
            res[j] = None
            continue
        order = _preference(j, choice[j])
        n = next((n for n in order if used[n] < cap[n]), None)
        if n is None:  # (restricted jobs only) all of its nodes are full: the least loaded
            n = min(order, key=lambda m: used[m] / active[m])
        res[j] = n
        used[n] += 1
    return res
