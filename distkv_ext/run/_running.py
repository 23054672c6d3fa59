"""`Running`: one job that runs (or is being claimed) here."""

from collections.abc import Callable, Iterable
from typing import Any

import anyio
from moat.util import NotGiven

from distkv_ext.codekit.core.depgraph import closure, static_imports

from ._admin import JobContext
from ._claim import Claim
from ._entry import RunnerEntry

__all__ = ["Running"]


class Running:
    """Book-keeping of one run of a job on this node.

    ``claim``: where its claim stands (`Claim`: the only state of the
    claim protocol); ``scope``: cancels the run; ``ctx``: the job's
    `JobContext` once its code starts; ``code_ended``: set once its code
    has ended (or the run ended before its code started); ``done``: set
    when it is over (the end's writes done too); ``code_entry``: the
    procedure it runs; ``started_value``: the runner entry's value it
    started with (to tell what an edit changed);
    ``moved_since``: since when the job is assigned to another node (the
    rebalance delay runs from then; None: it is ours); ``slot``: the
    calendar slot it starts for (None: it takes none); ``start_at``: when
    its code starts (a start claimed ahead; None: at once).
    """

    def __init__(self, entry: RunnerEntry, claim: Claim, on_stop: Callable[["Running"], None] | None = None) -> None:
        self.entry = entry
        self._on_stop = on_stop  # called once, at the first stop or fence
        self.claim = claim
        self.scope = anyio.CancelScope()
        self.ctx: JobContext | None = None
        self.code_ended = anyio.Event()
        self.done = anyio.Event()
        self.code_entry: Any = None
        self.moved_since: float | None = None
        self.slot: float | None = None
        self.start_at: float | None = None
        #: an operator's trigger or resume, or a run that was moved: it
        #: starts whatever pause holds the job (set by the claim)
        self.forced = False
        #: the run number its claim wrote (or tried to: a write cut short
        #: may have been applied); 0: none
        self.number = 0
        #: the runs whose output its end deletes (`RunOutputs.claim`)
        self.drop_outputs: list[int] = []
        #: whether its output was written (a quiet run writes none)
        self.output_stored = False
        v = entry.value
        self.started_value: dict[str, Any] = dict(v) if isinstance(v, dict) else {}

    def __repr__(self) -> str:
        return f"<Running {self.entry.job_name} {self.claim!r}>"

    def stop(self, reason: str, *, restart: bool = False, delete_state: bool = False) -> None:
        """Cancel the run; ``restart``: resume it (here or elsewhere);
        ``delete_state``: its entry is gone, remove the state too.  The
        first reason given is the one recorded."""
        self.claim.request_stop(reason, restart=restart, delete_state=delete_state)
        self.scope.cancel()
        self._stopping()

    def fence(self, reason: str) -> None:
        """Another node holds the job: cancel the run, write nothing."""
        self.claim.fence(reason)
        self.scope.cancel()
        self._stopping()

    def _stopping(self) -> None:
        on_stop, self._on_stop = self._on_stop, None
        if on_stop is not None:
            on_stop(self)

    def needs_any(self, names: Iterable[str], modules: Any) -> str | None:
        """The first (by name) of the stored modules ``names`` that this
        run's procedure needs, directly or through other modules (its
        ``requires`` and its imports; ``modules``: the module handler, for
        what they require in turn, or None); None if it needs none."""
        ce = self.code_entry
        if ce is None or ce.value is NotGiven:
            return None
        code = ce.value.get("code") if isinstance(ce.value, dict) else None
        needs = set(ce.requires) | static_imports(code if isinstance(code, str) else "")
        if modules is not None:
            needs = closure(modules.requires_graph(), needs) | needs
        hit = needs & set(names)
        return min(hit) if hit else None
