"""The runner's configuration as a value: `RunnerConfig`.

Our keys live below ``runner:`` beside DistKV's own (prefix, state, name,
start_delay, ping, actor, sub), which we do not use for scheduling.  They
are read, defaulted and checked once, when a runner starts
(`RunnerConfig.load`); the engine passes the frozen value around.  A bad
value raises `BadArguments` (exit status 2 on the command line) with a
one-line message that names the setting.
"""

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from moat.util import P, Path

from distkv_ext.codekit.core.checks import number
from distkv_ext.codekit.core.errors import BadArguments, InputRefused
from distkv_ext.codekit.core.signing import parse_public_key
from distkv_ext.codekit.core.whenchecks import tag_list

from ._layout import OUTPUT_PREFIX
from ._wire import MAX_WEIGHT

__all__ = ["RunnerConfig", "RUNNER_DEFAULTS"]


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """Our settings below ``runner:``, checked (see `load`).

    heartbeat: seconds between heartbeats (0.01 .. 3600; DistKV's ``ping`` is unrelated)
    timeout: a node silent this long is gone (at least twice ``heartbeat``, at most a day)
    settle: after claiming a job, wait this long, then check we still hold it
    rebalance: move running any-node jobs to a node that joins
    rebalance_delay: ... once the new assignment has held this long
    weight: this node's share of any-node jobs (0: none; at most 1000)
    stop_timeout: on stop, wait this long for the jobs to end
    kill_grace: a process-mode job's child gets SIGTERM when the job
      stops, and SIGKILL this many seconds later if it has not exited
    output: where the jobs' output goes (a path)
    output_lines: lines kept per run (>= 1)
    output_runs: runs kept per job and node (>= 1)
    output_line_chars: a longer output line is cut, with a marker saying how much
    output_run_chars: a run keeps at most this many characters of output (its last lines)
    result_bytes: a larger result is not stored (the run counts as failed); error texts are cut to it
    group_key: file with the group's key (base64 of >= 32 random bytes):
      every group message is authenticated; None: the group is not
    group_key_next: a second key file, also accepted (key rotation)
    trusted_keys: Ed25519 public keys (base64): run and import only code
      signed by one of them; empty: any code runs
    threads: worker threads for sync and thread code (a job beyond them waits for one)
    stall_limit: async job code that keeps the event loop busy this long is
      stopped (`_watchdog`); None: half of ``timeout``; less than ``timeout``
    quarantine_after: a job that stalled runners this many times in a row
      is quarantined (not started again until ``run resume``)
    write_timeout: a store write or read on the claim and fence path that
      takes longer fails (the runner fences itself); None: half of ``timeout``
    tags: this runner's tags (``relay``, ``room=kitchen``; at most 64),
      announced to its group: jobs that require or prefer tags are placed
      by them (`_placement`); ``run all --tag`` adds to them (`with_tags`)

    Constructing one checks it; a bad value raises `BadArguments`.  The
    key files are read when the runner starts (`GroupKeys.load`), not here:
    this value holds no secret.
    """

    heartbeat: float = 0.5
    timeout: float = 2.0
    settle: float = 0.25
    rebalance: bool = True
    rebalance_delay: float = 2.0
    weight: float = 1.0
    stop_timeout: float = 10.0
    kill_grace: float = 5.0
    output: Path = OUTPUT_PREFIX
    output_lines: int = 200
    output_runs: int = 5
    output_line_chars: int = 2000
    output_run_chars: int = 100_000
    result_bytes: int = 65536
    group_key: str | None = None
    group_key_next: str | None = None
    trusted_keys: tuple[str, ...] = ()
    threads: int = 40
    stall_limit: float | None = None
    quarantine_after: int = 3
    write_timeout: float | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, minimum, maximum in _LIMITS:
            object.__setattr__(self, name, _number(name, getattr(self, name), minimum, maximum))
        if self.timeout < 2 * self.heartbeat:
            raise BadArguments(
                f"runner.timeout ({self.timeout:g}) must be at least twice runner.heartbeat ({self.heartbeat:g})"
            )
        for name in ("stall_limit", "write_timeout"):
            value = getattr(self, name)
            if value is not None:  # None: half of timeout (`stall_seconds`, `write_seconds`)
                value = _number(name, value, 0.01, 86400.0)
                if value >= self.timeout:
                    raise BadArguments(f"runner.{name} ({value:g}) must be less than runner.timeout ({self.timeout:g})")
                object.__setattr__(self, name, value)
        for name in (
            "output_lines",
            "output_runs",
            "output_line_chars",
            "output_run_chars",
            "result_bytes",
            "threads",
            "quarantine_after",
        ):
            object.__setattr__(self, name, _count(name, getattr(self, name)))
        for name in ("output_line_chars", "output_run_chars", "result_bytes"):
            if getattr(self, name) > MAX_CAP:  # what it caps must stay far below DistKV's value limit
                raise BadArguments(f"runner.{name} must be at most {MAX_CAP}, not {getattr(self, name)}")
        if not isinstance(self.rebalance, int):  # bool is an int
            raise BadArguments(f"runner.rebalance must be true or false, not {self.rebalance!r}")
        object.__setattr__(self, "rebalance", bool(self.rebalance))
        object.__setattr__(self, "output", _path("output", self.output))
        if self.weight > MAX_WEIGHT:
            raise BadArguments(f"runner.weight must be at most {MAX_WEIGHT:g}, not {self.weight:g}")
        for name in ("group_key", "group_key_next"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v):
                raise BadArguments(f"runner.{name} must name a key file, not {v!r}")
        if self.group_key_next is not None and self.group_key is None:
            raise BadArguments("runner.group_key_next needs runner.group_key")
        object.__setattr__(self, "trusted_keys", _keys(self.trusted_keys))
        try:
            object.__setattr__(self, "tags", tuple(tag_list(self.tags, "runner.tags")))
        except InputRefused as exc:
            raise BadArguments(f"runner.tags: {exc}" if not str(exc).startswith("runner.tags") else str(exc)) from None

    @classmethod
    def load(cls, runner_cfg: Mapping[str, Any] | None = None, **overrides: Any) -> "RunnerConfig":
        """The configuration from a ``runner:`` mapping (other keys are
        ignored) and ``overrides`` on top (e.g. ``weight=2`` from ``run all
        --weight 2``); a value of None counts as not given.  Raises
        `BadArguments` for an unknown override or a bad value."""
        ours = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - ours
        if unknown:
            raise BadArguments(f"unknown runner setting: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in (runner_cfg or {}).items() if k in ours and v is not None}
        values.update((k, v) for k, v in overrides.items() if v is not None)
        return cls(**values)

    @property
    def stall_seconds(self) -> float:
        """`stall_limit`, or half of `timeout` if not set."""
        return self.timeout / 2 if self.stall_limit is None else self.stall_limit

    @property
    def write_seconds(self) -> float:
        """`write_timeout`, or half of `timeout` if not set."""
        return self.timeout / 2 if self.write_timeout is None else self.write_timeout

    @property
    def trusted(self) -> frozenset[bytes]:
        """`trusted_keys` as 32-byte public keys."""
        return frozenset(parse_public_key(k) for k in self.trusted_keys)

    def with_tags(self, tags: Iterable[str]) -> "RunnerConfig":
        """A copy whose `tags` are ours followed by ``tags`` (``run all
        --tag``: the option adds to the configured tags, without repeats)."""
        return dataclasses.replace(self, tags=(*self.tags, *tags))

    def replace(self, **overrides: Any) -> "RunnerConfig":
        """A copy with ``overrides`` (None: keep), checked again."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


#: The largest output and result caps (1 MiB): a run's output and a state
#: are single DistKV values, which every server replicates.
MAX_CAP = 1024 * 1024

#: (setting, minimum, maximum): a heartbeat of at least 10 ms (a smaller
#: one only burns CPU), and no setting beyond a day (or a weight of 1000).
_LIMITS: tuple[tuple[str, float, float], ...] = (
    ("heartbeat", 0.01, 3600.0),
    ("timeout", 0.02, 86400.0),
    ("settle", 0.0, 3600.0),
    ("rebalance_delay", 0.0, 86400.0),
    ("weight", 0.0, 1000.0),
    ("stop_timeout", 0.0, 86400.0),
    ("kill_grace", 0.0, 3600.0),
)


def _number(name: str, value: Any, minimum: float, maximum: float) -> float:
    try:
        return float(number(value, f"runner.{name}", minimum=minimum, maximum=maximum))
    except InputRefused as exc:
        raise BadArguments(str(exc)) from None


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value // 1 or value < 1:
        raise BadArguments(f"runner.{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


def _keys(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise BadArguments(f"runner.trusted_keys must be a list of public keys, not {value!r}")
    for k in value:
        try:
            parse_public_key(k)
        except ValueError as exc:
            raise BadArguments(f"runner.trusted_keys: {exc}") from None
    return tuple(str(k).strip() for k in value)


def _path(name: str, value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value:
        return P(value)
    if isinstance(value, (list, tuple)) and value:
        return Path.build(value)
    raise BadArguments(f"runner.{name} must be a DistKV path, not {value!r}")


#: Our keys below ``runner:`` with their defaults (derived from `RunnerConfig`).
RUNNER_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RunnerConfig)}
