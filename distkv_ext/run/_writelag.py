"""How long a claim's state write takes lately: `WriteLag`, so that a
start at a known time is claimed that much ahead (`_schedule.claim_lead`).

A claim writes the job's state before its code may start.  While the
store answers within milliseconds, a fixed allowance (`_schedule.CLAIM_LEAD`) is
plenty; under load it is not: at 10,000 jobs on one DistKV server the
writes took 1-3 s for tens of seconds at a time, and every start in such
a stretch began that late (the scale benchmark's runs "late by", 90th
percentile 2.2 s while the median was 0.01 s).  `WriteLag` keeps the
durations of the last claim writes (from the call, so the wait for a
free write slot counts too) and answers with their 90th percentile: one
slow write does not move it, a slow stretch does within a few writes.

Pure: durations are passed in.
"""

from collections import deque

__all__ = ["WriteLag", "SAMPLES"]

#: claim writes remembered (at 2,000 jobs a runner writes ~30 claims a second)
SAMPLES = 32


class WriteLag:
    """The durations of the last `SAMPLES` claim writes (`wrote`), and
    their 90th percentile (`high`), at most ``cap`` (the write timeout:
    a write that takes longer fails anyway)."""

    def __init__(self, cap: float) -> None:
        self.cap = float(cap)
        self._samples: deque[float] = deque(maxlen=SAMPLES)
        self._high = 0.0

    def wrote(self, seconds: float) -> None:
        """A claim write took ``seconds`` (negative: counted as 0)."""
        self._samples.append(min(max(0.0, float(seconds)), self.cap))
        ordered = sorted(self._samples)
        self._high = ordered[int(0.9 * (len(ordered) - 1))]

    def high(self) -> float:
        """The 90th percentile of the remembered durations; 0.0 before any."""
        return self._high
