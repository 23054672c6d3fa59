"""Where the runs of one runner root keep their output, and the output of
one run (`RunOutputs`; the capturing itself: `_output`).

Run ``N`` of a job keeps its output at ``output_path(..., N)``; a run that
printed and logged nothing stores nothing.  The job's state lists the runs
whose output may be stored (``outputs``, `window`): a run's claim adds its
own number, its end takes it out again if it stored nothing, and the runs
that fall out of the last ``output_runs`` are deleted when it ends
(`prune`).  So a quiet job costs the store no write for output (at 10,000
jobs, two writes per run of four), and a run killed before its end is still
deleted in time.  When a job is deleted, all of its runs go (`forget`)."""

import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import _output
from ._entry import RunnerEntry
from ._host import RunnerHost
from ._layout import output_path

__all__ = ["RunOutputs", "window", "LISTED_RUNS"]

#: Up to this ``output_runs``, a job's state lists the runs whose output
#: may be stored (`window`); with more, every run deletes the one that
#: falls out, stored or not (a state is sent to every runner at each write)
LISTED_RUNS = 64


def window(listed: Any, run_no: int, keep: int) -> tuple[list[int] | None, list[int]]:
    """(what the state's ``outputs`` becomes when run ``run_no`` is claimed,
    the runs whose output its end deletes), keeping the last ``keep`` runs.

    ``listed``: the state's ``outputs`` before, the runs that may have
    stored output; None: not known (written by an older runner, or
    unusable), so any of the last ``keep`` runs may have.  Numbers from
    ``run_no`` on (a state written behind our back) are dropped from the
    list, not deleted: a later run overwrites them.  With ``keep`` over
    `LISTED_RUNS`, nothing is listed (None) and the run that falls out is
    deleted."""
    cut = run_no - keep
    if keep > LISTED_RUNS:
        return None, [cut] if cut >= 1 else []
    if not isinstance(listed, (list, tuple)):
        listed = range(max(1, cut), run_no)
    runs = {r for r in listed if isinstance(r, int) and not isinstance(r, bool) and 1 <= r < run_no}
    return sorted(r for r in runs if r > cut) + [run_no], sorted(r for r in runs if r <= cut)


class RunOutputs:
    """The stored output of the runs of ``root``'s jobs."""

    def __init__(self, root: RunnerHost) -> None:
        self.root = root

    def path(self, run_no: int, entry: RunnerEntry) -> Any:
        """Where run ``run_no`` of ``entry`` keeps its output."""
        cfg = self.root.config
        return output_path(cfg.output, self.root.state_subpath, entry.subpath, run_no)

    def base(self, entry: RunnerEntry) -> Any:
        """Where the runs of ``entry`` keep their output (without the run number)."""
        return self.path(0, entry)[:-1]

    def start(
        self, entry: RunnerEntry
    ) -> tuple[_output.OutputBuffer, dict[str, object], Callable[[], Awaitable[None]]]:
        """(buffer, metadata, keeper coroutine function) for the output of
        the run that ``entry``'s state counts now.

        The run that falls out of the last ``output_runs`` is deleted when a
        run ends (`prune`), not here: a run number is used up by the claim's
        write, and a run stopped before its code starts (a SIGTERM, a
        pause, a limit) must prune as well, or its predecessor's output
        would stay forever."""
        root = self.root
        cfg = root.config
        state = entry.state
        run_no = int(state.runs or 1)
        _output.install()
        buf = _output.OutputBuffer(cfg.output_lines, cfg.output_line_chars, cfg.output_run_chars)
        meta: dict[str, object] = {"node": root.node, "run": run_no, "started": state.started or time.time()}
        where = self.path(run_no, entry)

        async def keep() -> None:
            await _output.keeper(root.client, where, buf, meta)

        return buf, meta, keep

    def claim(self, entry: RunnerEntry, run_no: int) -> list[int]:
        """Run ``run_no`` of ``entry`` is being claimed: list it in the
        state (written by the claim) as a run that may store output; return
        the runs to delete when it ends (see `window`)."""
        state = entry.state
        listed, drop = window(state.outputs, run_no, self.root.config.output_runs)
        state.outputs = listed
        return drop

    @staticmethod
    def quiet(entry: RunnerEntry, run_no: int) -> None:
        """Run ``run_no`` of ``entry`` stored no output: the write of its end
        no longer lists it."""
        state = entry.state
        listed = state.outputs
        if isinstance(listed, (list, tuple)) and run_no in listed:
            state.outputs = [r for r in listed if r != run_no]

    async def prune(self, entry: RunnerEntry, runs: list[int]) -> None:
        """A run of ``entry`` has ended: delete the output of ``runs``
        (those that fell out of the last ``output_runs``, `claim`)."""
        for run_no in runs:
            await _output.delete_run(self.root.client, self.path(run_no, entry))

    async def forget(self, entry: RunnerEntry) -> int:
        """Delete the output of every run of ``entry``; return how many."""
        return await _output.forget_runs(self.root.client, self.base(entry))
