"""How a runner root writes the states of the jobs it runs: `StateWrites`.

Two rules, both about a busy store:

* A write on the claim path waits at most ``runner.write_timeout``; a
  runner whose writes are not confirmed at all fences itself
  (`save_confirmed`).
* A run's claim (its state naming this node) is written once the run has
  lasted ``runner.claim_write_delay`` (1 s); a shorter run writes it
  with its end, in one write (`claim_written_later`).  At ten thousand
  jobs a minute the store's writes, each sent on to every runner of the
  group, are what the group runs out of first (``bench/server_writes.py``).
  Meanwhile the state holds back what arrives from the store
  (`StateEntry.hold`), as while a write is under way; the claim itself
  was won on the group's channel (`_lifecycle`), and a runner that dies
  before the write leaves no trace of the run: the job is due as before
  and runs again.
"""

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import anyio
from distkv.exceptions import DistKVError

from ._entry import RunnerEntry, StateEntry
from ._host import RunnerHost
from ._running import Running

logger = logging.getLogger(__name__)

__all__ = ["StateWrites", "WRITES_IN_FLIGHT", "WRITE_ERRORS"]

#: what a failed store write raises (besides TimeoutError)
WRITE_ERRORS = (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError)
#: state writes of one runner root in flight at once (see `save_confirmed`)
WRITES_IN_FLIGHT = 16


class StateWrites:
    """The state writes of the runs of one runner root."""

    def __init__(self, root: RunnerHost) -> None:
        self.root = root
        self._writes = anyio.CapacityLimiter(WRITES_IN_FLIGHT)
        self._confirmed_at = 0.0  # time.monotonic() of the last write `save_confirmed` saw confirmed

    @contextlib.asynccontextmanager
    async def claim_written_later(self, entry: RunnerEntry, run: Running) -> AsyncIterator[None]:
        """While the run goes on: if its claim is not written yet, write it
        once the run has lasted ``runner.claim_write_delay`` (a shorter run
        writes it with its end: one write of the state per run instead of
        two, which is what a group of thousands of short jobs spends its
        store on).  A claim that cannot be written stops the run."""
        async with anyio.create_task_group() as tg:
            if run.claim_unwritten:
                tg.start_soon(self._write_claim, entry, run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def _write_claim(self, entry: RunnerEntry, run: Running) -> None:
        await anyio.sleep(self.root.config.claim_write_delay)
        with anyio.CancelScope(shield=True):  # (once begun, the write ends before the run's end writes)
            try:
                await self.save_confirmed(entry.state)
            except (*WRITE_ERRORS, TimeoutError) as exc:
                logger.info("%s: could not write the claim of %s: %r", self.root.node, entry, exc)
                run.stop(f"its claim could not be written: {exc!r}", restart=True)
            finally:
                run.claim_unwritten = False
                await entry.state.release_hold()

    async def save_confirmed(self, state: StateEntry) -> None:
        """Save ``state``; a write the server has not confirmed within
        ``runner.write_timeout`` raises TimeoutError.  If no other write was
        confirmed while it waited (the store does not answer us, rather
        than slowly: under load, fencing on every late write cut five
        runners of 3000 jobs off every few seconds, and jobs never ran),
        the runner fences itself until the server answers again
        (`writes_unconfirmed`).

        At most `WRITES_IN_FLIGHT` such writes are sent at once, and the
        timeout counts from the sending: when a thousand jobs start
        together, the last write waits behind our own 999, which says
        nothing about the server, and our heartbeats do not queue up
        behind them."""
        limit = self.root.config.write_seconds
        try:
            await state.save(gate=self._writes, limit=limit)
        except TimeoutError:
            if time.monotonic() - self._confirmed_at >= limit:
                self.root.writes_unconfirmed(f"the state of {state} was not written within {limit:g} s")
            else:
                logger.info("%s: %s not written within %g s (others were)", self.root.node, state, limit)
            raise
        self._confirmed_at = time.monotonic()
