"""How much of a run is stored: results and error texts (`fit_outcome`).

A run's state (with its result and error) is one DistKV value, which
every server replicates; a 20 MB result stalls DistKV 0.65's replication
between servers.  So a result larger than ``runner.result_bytes``
(encoded) is not stored: the run counts as failed, with an error that
says why and names the setting; an error text longer than that is cut.
The output's caps are `OutputBuffer`'s.
"""

from distkv_ext.codekit.core.checks import storable_problems

from ._job import Outcome
from ._output import cut_marker

__all__ = ["cap_text", "fit_outcome"]


def cap_text(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters (with a marker) if longer."""
    if len(text) <= limit:
        return text
    return text[:limit] + cut_marker(len(text) - limit)


def fit_outcome(outcome: Outcome, result_bytes: int) -> Outcome:
    """``outcome`` if it can be stored as it is; else one that can: a
    result beyond ``result_bytes`` (or that DistKV cannot store) makes
    the run a failure saying so; a long error text is cut."""
    if outcome.ok:
        problems = storable_problems(outcome.result, "result", max_bytes=result_bytes)
        if not problems:
            return outcome
        return Outcome(False, error=f"{problems[0]} (runner.result_bytes)", started=outcome.started)
    if outcome.error is not None and len(outcome.error) > result_bytes:
        return Outcome(False, error=cap_text(outcome.error, result_bytes), exc=outcome.exc, started=outcome.started)
    return outcome
