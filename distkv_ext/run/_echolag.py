"""How long the group's channel takes lately: the round trip of our own
heartbeats, for the claim's settle time.

A claim waits ``settle`` seconds for a competing claim or a "held"
answer (`_lifecycle`).  Those travel the way our heartbeats do (to the
DistKV server, through its MQTT broker, back out to every member), so
while our own heartbeats take a second to come back, a competing claim
sent at the same moment as ours takes about a second to reach us too,
and a 0.25 s settle ends before it arrives: both runners write the job's
state, one of them then hears the other's "held" and stops again
(``X also runs J``).  Under load (thousands of jobs starting at once on a
busy server) that doubled the writes at exactly the wrong moment: in the
scale benchmark's fresh start of five runners of 10,000 jobs, 4,400 such
double claims.  `EchoLag` measures the round trip; `settle_time` makes
the settle wait that long (and a little more), never less than the
configured ``settle`` and at most half the group's timeout (a claim that
settles longer than that finds the group changed under it anyway).

Pure: times are passed in (``time.monotonic()`` of this process).
"""

from collections import deque

__all__ = ["EchoLag", "settle_time", "LAG_MARGIN"]

#: a claim settles this many times the channel's recent round trip
LAG_MARGIN = 1.5
#: samples kept at most (a heartbeat every 10 ms would otherwise keep many)
_MAX_SAMPLES = 64


class EchoLag:
    """The round trips of our own heartbeats within the last ``window``
    seconds (`heard`), and how long the newest one has been out (`longest`)."""

    def __init__(self, window: float) -> None:
        self.window = float(window)
        self._samples: deque[tuple[float, float]] = deque(maxlen=_MAX_SAMPLES)  # (heard at, round trip)
        self._newest_sent: float | None = None
        self._longest = 0.0  # of the samples (kept up to date: a claim asks for it per job)

    def heard(self, sent: float, now: float) -> None:
        """Our heartbeat sent at ``sent`` came back at ``now``.  A ``sent``
        in the future (it cannot be: our own clock) counts as no delay."""
        rtt = max(0.0, now - min(sent, now))
        if len(self._samples) == self._samples.maxlen and self._samples[0][1] >= self._longest:
            self._samples.popleft()  # the longest may leave with it
            self._longest = max((r for _, r in self._samples), default=0.0)
        self._samples.append((now, rtt))
        self._longest = max(self._longest, rtt)
        if self._newest_sent is None or sent > self._newest_sent:
            self._newest_sent = min(sent, now)
        self._forget(now)

    def longest(self, now: float, interval: float) -> float:
        """The longest round trip heard within the window; at least as
        long as the heartbeats sent since the newest one that came back
        have been out (one is sent every ``interval`` seconds): while
        they stay away, the channel is at least that slow.  0.0 before
        any came back."""
        self._forget(now)
        if self._newest_sent is None:
            return self._longest
        out = now - self._newest_sent - interval  # the next one has been out this long
        return max(self._longest, out, 0.0)

    def _forget(self, now: float) -> None:
        cut = now - self.window
        gone = False
        while self._samples and self._samples[0][0] < cut:
            gone = self._samples.popleft()[1] >= self._longest or gone
        if gone:
            self._longest = max((r for _, r in self._samples), default=0.0)


def settle_time(base: float, lag: float, timeout: float) -> float:
    """A claim's settle time: ``base`` (``runner.settle``), or `LAG_MARGIN`
    times the channel's round trip ``lag`` where that is longer, but the
    lag adds no more than up to half of ``timeout``."""
    return max(base, min(LAG_MARGIN * lag, timeout / 2))
