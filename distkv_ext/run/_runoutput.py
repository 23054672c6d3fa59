"""Where the runs of one runner root keep their output, and the output of
one run (`RunOutputs`; the capturing itself: `_output`).

Run ``N`` of a job keeps its output at ``output_path(..., N)``; when a run
ends, the run that falls out of the last ``output_runs`` is deleted
(`prune`), and when a job is deleted, all of its runs (`forget`)."""

import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import _output
from ._entry import RunnerEntry
from ._host import RunnerHost
from ._layout import output_path

__all__ = ["RunOutputs"]


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

    async def prune(self, entry: RunnerEntry, run_no: int) -> None:
        """Run ``run_no`` of ``entry`` has used up its number: delete the
        output of the run that falls out of the last ``output_runs``."""
        await _output.prune(self.root.client, self.path, self.root.config.output_runs, run_no, entry)

    async def forget(self, entry: RunnerEntry) -> int:
        """Delete the output of every run of ``entry``; return how many."""
        return await _output.forget_runs(self.root.client, self.base(entry))
