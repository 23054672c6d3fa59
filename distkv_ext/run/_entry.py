"""Runner entries and their state entries (DistKV 0.65's layout).

A runner entry (``.distkv run KIND GROUP ... JOB``) says what runs and
when; it holds no code, only a pointer to a procedure.  Its state entry
(``.distkv state KIND GROUP [NODE] ... JOB``) is written by runners only,
so an operator editing a job never races a runner on one entry.  What a
state's fields may hold: `_statevalues` (re-exported here).
"""

import contextlib
import logging
import time
from typing import Any

import anyio
from distkv.exceptions import DistKVError
from distkv.obj import ClientEntry
from moat.util import NotGiven, P, Path

from distkv_ext.codekit.store.entries import is_chain_error

from ._jobentry import JobPath, _JobEntry
from ._statevalues import chain_covers, is_time, usable_state

logger = logging.getLogger(__name__)

__all__ = ["JobPath", "RunnerEntry", "StateEntry", "WRITE_ERRORS", "chain_covers", "usable_state", "is_time"]

#: what a write of an entry raises when it did not get through, a timeout
#: aside: the server refused it (DistKV's chain check) or the connection broke
WRITE_ERRORS = (DistKVError, anyio.ClosedResourceError, anyio.BrokenResourceError)


class RunnerEntry(_JobEntry):
    """What to run, with which data, and when.

    Attributes (stored; DistKV 0.65's names and defaults, plus ours):
      code: path of the procedure to run
      data: dict of variables for it (on top of the procedure's defaults)
      target: time (Unix seconds) to start at; 0/None: don't start
      written: the writer's clock when it set ``target`` (ours; None:
        unknown): a target at or before it meant "now" (see `next_start`)
      repeat: seconds after a successful run to start again (0: don't)
      delay: seconds to wait before retrying after an error
      backoff: factor: the n-th error in a row waits ``delay * backoff**n``
      max_delay: cap of that wait (ours; default: none)
      max_tries: give up after this many errors in a row (ours; 0: never)
      ok_after: a run that lasts this long counts as healthy (resets the
        backoff, resolves the error); 0: only a successful end does
      info: one line (ours)
      cron, at, tz, location, jitter, overlap, catch_up, catch_up_window:
        the calendar (ours; ``run/_calendar.py``): a cron expression or a
        sun time, its zone and place, a spread of each start, what to do
        with a start due while the last run runs and with starts missed
        while the group was down
      require_tags, prefer_tags: where it may / should run (ours)
      limits: {NAME: N}: at most N jobs sharing NAME run at once (ours)
      args: positional arguments of the procedure (ours)
    """

    ATTRS = (
        "code data delay ok_after repeat backoff target max_delay max_tries info pin written"
        " cron at tz location jitter overlap catch_up catch_up_window require_tags prefer_tags limits args"
    ).split()

    # The stored fields, as written by anyone: their types are what a good
    # entry holds, not checked (the scheduler reports an entry whose fields
    # make it fail as unusable).
    code: Any = None
    data: Any = None
    delay: float = 100
    repeat: float = 0
    target: float = 0
    backoff: float = 1.1
    ok_after: float = 0
    max_delay: float = 0
    max_tries: int = 0
    info: str | None = None
    pin: str | None = None
    written: float | None = None
    cron: str | None = None
    at: str | None = None
    tz: str | None = None
    location: Any = None
    jitter: float | None = None
    overlap: str | None = None
    catch_up: str | None = None
    catch_up_window: float | None = None
    require_tags: Any = None
    prefer_tags: Any = None
    limits: Any = None
    args: Any = None

    @property
    def state(self) -> "StateEntry":
        """The `StateEntry` of this job (created locally if missing)."""
        st: StateEntry = self.root.state_for(self.job_path)
        return st

    @property
    def code_path(self) -> Path | None:
        """The path of the procedure; None if none is set.  Raises
        TypeError or ValueError for a ``code`` that is no path."""
        c = self.code
        if c is None:
            return None
        if isinstance(c, str):
            return P(c)
        return Path.build(c)

    async def run_at(self, t: float) -> None:
        """Start this job at time ``t`` (Unix seconds): set its target, save it.

        The entry also records this machine's clock (``written``), so a
        ``t`` of now or earlier starts the job at once on every runner,
        however wrong its clock (see `next_start`)."""
        self.target = t
        self.written = time.time()
        await self.save()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {Path.build(self.job_path)} -> {self.code}>"

    async def set_value(self, value: Any) -> None:
        # no equality check: a local save() has set the value already
        if value is not NotGiven and not isinstance(value, dict):
            # not a runner entry (written behind our back): no fields, no job
            await super().set_value(NotGiven)
            self.value = value
        else:
            await super().set_value(value)
        self.root.entry_changed(self)

    async def update(self, value: Any, **kw: Any) -> Any:
        res = await super().update(value, **kw)
        self.root.entry_changed(self)
        return res


class StateEntry(_JobEntry):
    """What happened to a job: written by the runners only.

    Attributes:
      node: the node running it now (None when not running)
      last_node: the node that ran it last (kept after it stops)
      started, stopped: times of the last start / end
      result: the last successful run's return value
      backoff: errors in a row (the retry wait grows with it)
      computed: when it is due next (0: not scheduled)
      reason: why it is (not) running, in words
      pinged: last time the running node confirmed it
      runs: how many times it has been started
      error: the last error, one line (cleared on success)
      resume: the last run was interrupted (moved to another node, code
        changed, runner stopped): start it again at once, wherever
      waiting: what the running job's code waits for (a worker thread), or None
      stalls: the runners whose event loop the job's code stalled, in a row
        (`_loopwatch`; cleared by a run that ends well or becomes healthy)
      quarantined: why the job is not started again (its stalls) until
        ``run resume``; None: it is not quarantined
      triggered: who asked for one run now (``run trigger``: "by USER@HOST
        at TIME"), with ``resume``; cleared when that run starts
      for_target: the runner entry's ``target`` that the last run started
        for (ours; None: written by an older runner): a target that differs
        is new (see `next_start`); a calendar job's: the slot it started for
      for_calendar: the calendar (cron or sun time, and zone) that
        ``for_target`` is a slot of; another one is a new calendar (ours)
      placement: why the runners do not run it by its tags (``r2 lacks
        tag relay``, ``no live member has tag relay``; `_placement`);
        None once a run starts
      skipped: how many starts of a calendar job were skipped (due while it
        ran, with overlap skip; missed while the group was down) (ours)
      skipped_slot: the latest slot skipped (ours; see `_calplan`)
      skip_note: why the last start was skipped, in words (ours)
      queued: a calendar slot that came due while the job ran (overlap
        queue or cancel): it starts once the run has ended (ours)
      outputs: the runs whose output may be stored (ours; absent: any of
        the last ``output_runs``; see `_runoutput.window`)

    ``started``, ``stopped`` and ``pinged`` are the clock of the node that
    wrote them (``last_node``): for display, and for DistKV's runner.  No
    runner compares them with its own clock unless it wrote them itself;
    it counts from when it heard the state instead (`heard_at`).
    """

    ATTRS = (
        "started stopped pinged computed reason result node backoff last_node runs error resume"
        " waiting stalls quarantined for_target for_calendar triggered placement"
        " skipped skipped_slot skip_note queued outputs"
    ).split()

    started: float = 0
    stopped: float = 0
    pinged: float = 0
    node: str | None = None
    last_node: str | None = None
    result: Any = NotGiven
    backoff: int = 0
    computed: float = 0
    reason: str = ""
    runs: int = 0
    error: str | None = None
    resume: bool = False
    waiting: str | None = None
    stalls: tuple[str, ...] | list[str] = ()  # replaced, never changed in place
    quarantined: str | None = None
    for_target: float | None = None
    for_calendar: str | None = None
    triggered: str | None = None
    placement: str | None = None
    skipped: int = 0
    skipped_slot: float | None = None
    skip_note: str | None = None
    queued: float | None = None
    outputs: Any = NotGiven  # list[int] | None; absent until a run of ours lists them

    chain: Any  # DistKV's: the change chain of the value we have
    _written: Any = None  # chain of our last write, until the mirror has seen it
    _written_at = 0.0
    _deferred: tuple[Any, Any] | None = None  # (value, chain) held back as a possible late echo
    _saving = 0  # our writes of it that are asked for and not done
    _held: tuple[Any, Any] | None = None  # (value, chain) that arrived meanwhile (see `save`)
    _known: Any = NotGiven  # the chain of the latest value we wrote or took in
    _failed = False  # the last write failed, and no value came from the store since (see `unsaved`)
    _heard_key: Any = None  # (node, last_node, stopped) of the value we have
    _heard_at: float | None = None  # time.time() when that value arrived (see heard_at)

    #: seconds after our own write during which an update that does not
    #: include it counts as a late echo of an older one (ignored); later,
    #: it is the servers' verdict on a conflict (a partition healed) and wins
    ECHO_WINDOW = 2.0
    #: seconds a read of the state after a refused write may take (`save`)
    RELOAD_SECONDS = 10.0

    def __repr__(self) -> str:  # the runners' logs name states by it ("the state of ... was not written")
        return f"<{type(self).__name__} {Path.build(tuple(self.subpath))} node={self.node} runs={self.runs}>"

    async def save(
        self, wait: bool = False, *, gate: anyio.CapacityLimiter | None = None, limit: float | None = None
    ) -> Any:
        """Write the attributes as they are when the write is sent.

        Writes of one state go one at a time.  From the call until the
        write is done, a value that arrives from the store (the echo of an
        older write, ours or another node's) is held back, then applied as
        if it had come after (`set_value` knows a late echo): applied at
        once, it would undo what the caller has just set and is about to
        write, or what the run changed while an earlier write was under
        way.  Such an undo once wrote "node: r5, stopping" back over a
        finished run's end, and its job stayed held by a live runner that
        no longer ran it, for good.  The write is still conditional on the
        value we knew before the held one: if that was another node's
        write (a take-over), ours fails (DistKV's chain check) and theirs
        stands.

        ``gate``: wait for one of its slots before sending; ``limit``:
        raise TimeoutError if the server has not confirmed the write this
        many seconds after it was sent (it may still be applied).  A write
        that fails leaves the fields as set: `unsaved` says so until a
        write of them succeeds or a value comes from the store.  A write
        the server refused for its chain has the state read from the server
        again, in the background (`ResyncRoot.reload_entry`): a mirror that
        missed a change would have every later write refused as well.
        """
        refused = False
        self._saving += 1
        if self._known is NotGiven:  # a state we had no value of: our write stays
            self._known = self.chain  # conditional on its absence, whatever arrives meanwhile
        try:
            async with self._lock:
                async with gate if gate is not None else _NO_GATE:
                    with anyio.fail_after(limit) if limit is not None else _NO_LIMIT:
                        res = await ClientEntry.update(self, value=self.get_value(), _locked=True, wait=wait)
                self._failed = False
                self._written = self._known = self.chain
                self._written_at = time.monotonic()
                self._deferred = None  # our newer write supersedes what was held back
                self._note_heard()
        except BaseException as exc:  # not written (or not known to be): `unsaved`
            self._failed = True  # (unless a value arrives meanwhile: below)
            refused = is_chain_error(exc)
            raise
        finally:
            self._saving -= 1
            if not self._saving and self._held is not None:
                (value, chain), self._held = self._held, None
                self.chain = chain
                with anyio.CancelScope(shield=True):  # a save cut short by a timeout must not lose it
                    await self.set_value(value)
            if refused and not self._saving:  # (not awaited here: the refusal is the caller's news)
                try:
                    await self.root.spawn(self._reload)  # a coroutine in DistKV 0.65
                except RuntimeError:  # the mirror is closing (its task group is): nothing to correct
                    pass
        return res

    async def _reload(self) -> None:
        """Read this state from the server again (a write was refused)."""
        with anyio.move_on_after(self.RELOAD_SECONDS):
            try:
                await self.root.reload_entry(self)
            except WRITE_ERRORS as exc:  # the refusal is what the caller hears of
                logger.debug("%s: could not reload %r: %r", self.root, self, exc)

    @property
    def unsaved(self) -> bool:
        """Fields set here that the store does not have: their write failed
        (the server did not confirm it, the connection broke), and no value
        has come from the store since (it would replace them).  The mirror
        reads them; the other runners do not know them."""
        return self._failed and not self._saving and bool(self.__dict__.get("_changed"))

    def drop_unsaved(self) -> None:
        """Forget the fields set here and not written: read what the store
        has again (a claim whose write failed never held the job)."""
        self.__dict__.pop("_changed", None)
        self._failed = False

    @property
    def heard_at(self) -> float | None:
        """When this node got the state's current run and stop (a new
        ``node``, ``last_node`` or ``stopped``, by our own write or from the
        store; a state loaded at start: then), on this machine's clock;
        None before any value.  When another node stopped the job, without
        its clock: late by the delay of the news, never early.

        Taken once, on the clock the scheduler plans with (``time.time()``),
        so a due time counted from it stays put: one recomputed from the
        monotonic clock at each look moved by microseconds, and the
        scheduler, which records a changed due time in the state
        (``computed``), wrote the state hundreds of times a second while
        waiting.  A step of this machine's clock moves it as it moves every
        time this runner wrote itself."""
        return self._heard_at

    def _note_heard(self) -> None:
        key = (self.node, self.last_node, self.stopped)
        if key != self._heard_key or self._heard_at is None:
            self._heard_key, self._heard_at = key, time.time()

    async def set_value(self, value: Any) -> None:
        incoming = self.chain
        if self._saving and value is not NotGiven:  # applied when our write is done (see `save`)
            self._held = (value, incoming)
            if self._known is not NotGiven:
                self.chain = self._known  # our write stays conditional on what we knew
            return
        if self._written is not None and value is not NotGiven:
            recent = time.monotonic() - self._written_at < self.ECHO_WINDOW
            if recent and not chain_covers(incoming, self._written):
                # the late echo of an older write: our newer one is on its
                # way.  Unless it was the servers' verdict on a conflict:
                # then nothing follows, and it applies once the window ends
                self.chain = self._written
                if self._deferred is None:
                    await self.root.spawn(self._apply_deferred)  # a coroutine in DistKV 0.65
                self._deferred = (value, incoming)
                return
            self._written = None
        self._deferred = None
        old_node = self.node
        self._known = self.chain
        self._failed = False  # the store's value replaces the fields set here
        await super().set_value(value if value is NotGiven else usable_state(value, self))
        self._note_heard()
        self.root.state_changed(self, old_node)

    async def _apply_deferred(self) -> None:
        await anyio.sleep(max(0.0, self._written_at + self.ECHO_WINDOW - time.monotonic()))
        pending, self._deferred = self._deferred, None
        if pending is not None:  # nothing newer came meanwhile
            self._written = None
            value, self.chain = pending
            await self.set_value(value)


class _NoGate:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_GATE = _NoGate()
_NO_LIMIT = contextlib.nullcontext()
