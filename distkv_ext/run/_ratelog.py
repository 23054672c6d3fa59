"""A warning that may come thousands of times a minute, logged at most
once a minute with how often it came: `RateLog`.

A failed claim write is harmless once (the job is looked at again), but
many of them say the store cannot keep up, and a job that then stays
unstarted should leave a trace at the daemons' default level (WARNING)
without one line per job.
"""

import logging
import time

__all__ = ["RateLog", "EVERY"]

#: seconds between two lines of one `RateLog`, at least
EVERY = 60.0


class RateLog:
    """Counts occurrences of one kind of trouble (``what``, e.g. "could
    not claim") and logs them on ``logger`` at WARNING: the first at once,
    then at most one line per ``every`` seconds, with the count since the
    last line and the latest detail (those after the last line are told
    by the next one)."""

    def __init__(self, logger: logging.Logger, what: str, every: float = EVERY) -> None:
        self.logger = logger
        self.what = what
        self.every = float(every)
        self.count = 0  # since the last line
        self.total = 0
        self._latest = ""
        self._logged_at: float | None = None

    def add(self, detail: str, now: float | None = None) -> None:
        """One more; ``now``: `time.monotonic()` (for tests)."""
        now = time.monotonic() if now is None else now
        self.count += 1
        self.total += 1
        self._latest = detail[:300]
        if self._logged_at is None or now - self._logged_at >= self.every:
            self._logged_at = now
            if self.count == 1:
                self.logger.warning("%s %s", self.what, self._latest)
            else:
                self.logger.warning(
                    "%s: %d times in the last %.0f s; latest: %s", self.what, self.count, self.every, self._latest
                )
            self.count = 0
