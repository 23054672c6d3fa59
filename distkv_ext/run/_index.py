"""`JobIndex`: the jobs a scheduler knows, by path and by name.

Runner entries are known by their path below the group (a tuple) and by
their name (the path, dotted: the key of assignments and claims).  The
index keeps both directions, and the runs on this node both ways, and is
the only code that changes them, so they cannot drift apart; `check`
asserts that they agree (the tests call it through
`Scheduler.check_consistency`).
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._claim import Phase
from ._entry import JobPath
from ._running import Running

__all__ = ["JobIndex"]


class JobIndex:
    """Runner entries (path <-> name) and runs here (path and name -> `Running`).

    ``held``: paths of jobs whose state may name a node (a superset: the
    assignment keeps such jobs where they run; pruned when it is computed).
    """

    def __init__(self) -> None:
        self._names: dict[JobPath, str] = {}  # every runner entry: path -> name
        self._paths: dict[str, JobPath] = {}  # name -> path
        self._runs: dict[JobPath, Running] = {}
        self._runs_by_name: dict[str, Running] = {}
        self.held: set[JobPath] = set()

    # --- runner entries ---

    def add_entry(self, path: JobPath, name: str) -> bool:
        """Know the entry at ``path``; True if it is new."""
        if path in self._names:
            return False
        self._names[path] = name
        self._paths[name] = path
        return True

    def remove_entry(self, path: JobPath) -> bool:
        """Forget the entry at ``path``; True if it was known."""
        name = self._names.pop(path, None)
        if name is None:
            return False
        if self._paths.get(name) == path:
            del self._paths[name]
            # two paths with one name ("a.b" and "a" "b"): the other keeps it
            other = next((p for p, n in self._names.items() if n == name), None)
            if other is not None:
                self._paths[name] = other
        return True

    def reset_entries(self, entries: Iterable[tuple[JobPath, str]]) -> None:
        """Know exactly these (path, name) pairs."""
        self._names = dict(entries)
        self._paths = {n: p for p, n in self._names.items()}

    def has_entry(self, path: JobPath) -> bool:
        """Is there a runner entry at ``path``?"""
        return path in self._names

    def name_of(self, path: JobPath) -> str | None:
        """The name of the entry at ``path`` (None: not known)."""
        return self._names.get(path)

    @property
    def paths(self) -> Mapping[JobPath, str]:
        """Path -> name of every known entry (read only)."""
        return self._names

    @property
    def names(self) -> Mapping[str, JobPath]:
        """Name -> path of every known entry (read only)."""
        return self._paths

    # --- runs here ---

    def add_run(self, run: Running) -> None:
        """A run of the job at ``run.entry.job_path`` begins here."""
        self._runs[run.entry.job_path] = run
        self._runs_by_name[run.entry.job_name] = run

    def remove_run(self, run: Running) -> None:
        """``run`` is over (a later run of the same job stays)."""
        path, name = run.entry.job_path, run.entry.job_name
        if self._runs.get(path) is run:
            del self._runs[path]
        if self._runs_by_name.get(name) is run:
            del self._runs_by_name[name]

    def run_at(self, path: JobPath) -> Running | None:
        """The run of the job at ``path`` here, if any."""
        return self._runs.get(path)

    def run_named(self, name: str) -> Running | None:
        """The run of the job named ``name`` here, if any."""
        return self._runs_by_name.get(name)

    @property
    def runs(self) -> Mapping[JobPath, Running]:
        """Path -> run, of every job running (or being claimed) here (read only)."""
        return self._runs

    # --- consistency ---

    def holders(self, state_of: Callable[[JobPath], Any], is_live: Callable[[str], bool], me: str) -> dict[str, str]:
        """{job name: the node that runs it}: the live nodes that the states
        of the `held` jobs name (those whose state names nobody drop out of
        `held`), and ``me`` for the runs here.  ``state_of(path)``: the
        job's state entry, or None."""
        current = {}
        for path in list(self.held):
            st = state_of(path)
            node = None if st is None else st.node
            name = self._names.get(path)
            if node is None:
                self.held.discard(path)
            elif name is not None and is_live(node):
                current[name] = node
        for path in self._runs:
            name = self._names.get(path)
            if name is not None:
                current[name] = me
        return current

    def check(self, state_of: Callable[[JobPath], Any] | None = None, me: str | None = None) -> None:
        """Raise AssertionError if the two directions disagree, a run that
        is over is still filed, or (with ``state_of``, see `holders`) a job
        whose state names another node than ``me`` is not in `held`."""
        for run in self._runs.values():
            assert run.claim.phase is not Phase.RELEASED, f"released run of {run.entry} still filed"
        if state_of is not None:
            for path in self._names:
                st = state_of(path)
                if st is not None and st.node not in (None, me):
                    assert path in self.held, f"{path} is held by {st.node}, the scheduler does not know"
        assert set(self._paths) == set(self._names.values()), "entry names"
        for name, path in self._paths.items():
            assert self._names.get(path) == name, f"entry {name} at {path}"
        for path, run in self._runs.items():
            assert run.entry.job_path == path, f"run of {run.entry.job_path} filed at {path}"
        by_name = {run.entry.job_name for run in self._runs.values()}
        assert set(self._runs_by_name) == by_name, "runs by name"
        for name, run in self._runs_by_name.items():
            assert self._runs.get(run.entry.job_path) is run, f"run {name} not filed by its path"
