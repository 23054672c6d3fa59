"""Prometheus metrics of the runner engine: ``distkv_run_*``.

The engine calls the small functions here at the moments that count
(a run started, a run failed, a job taken over from a node that is gone,
a claim won); they only bump
counters in `REGISTRY`, a registry of our own (not prometheus-client's
global one, so that a process may also run a status page, whose
`distkv_ext.web` metrics have the same names).

``run all --metrics HOST:PORT`` serves `REGISTRY` (`serve_metrics`), with
what is read from the runners when scraped (`DaemonCollector`): the jobs
by state as this runner sees them, and the group messages dropped (a
group's ``dropped``: {reason: n}, where its group channel counts them).  The names
and help texts are in `METRICS`; the status page uses the same.
"""

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

__all__ = [
    "METRICS",
    "CLAIM_BUCKETS",
    "REGISTRY",
    "DaemonCollector",
    "run_started",
    "run_failed",
    "failover",
    "claimed",
    "serve_metrics",
    "topic_labels",
    "labels_of",
]

#: name -> (type, help, label names) of every ``distkv_run_*`` metric; the
#: counters' samples end in ``_total`` (prometheus-client adds it).
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "distkv_run_jobs": ("gauge", "Jobs by state", ("kind", "group", "state")),
    "distkv_run_starts": ("counter", "Runs started", ("kind", "group")),
    "distkv_run_failures": ("counter", "Runs that ended in an error", ("kind", "group")),
    "distkv_run_failovers": ("counter", "Jobs taken over from a node that was gone", ("kind", "group")),
    "distkv_run_claim_seconds": ("histogram", "Seconds from claiming a job to holding it", ("kind", "group")),
    "distkv_run_messages_dropped": (
        "counter",
        "Messages of a group channel dropped as unusable",
        ("kind", "group"),
    ),
}

#: Buckets of the claim latency histogram (seconds; a claim settles for
#: ``runner.settle``, 0.25 s by default).
CLAIM_BUCKETS = (0.05, 0.1, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)

#: The registry of the engine's metrics (served by ``run all --metrics``).
REGISTRY = CollectorRegistry()


def _counter(name: str) -> Counter:
    _, text, labels = METRICS[name]
    return Counter(name, text, labels, registry=REGISTRY)


_STARTS = _counter("distkv_run_starts")
_FAILURES = _counter("distkv_run_failures")
_FAILOVERS = _counter("distkv_run_failovers")
_CLAIMS = Histogram(
    "distkv_run_claim_seconds",
    METRICS["distkv_run_claim_seconds"][1],
    METRICS["distkv_run_claim_seconds"][2],
    buckets=CLAIM_BUCKETS,
    registry=REGISTRY,
)


def run_started(kind: str, group: Any) -> None:
    """A run of a job of ``kind`` ("any", "all", "single") in ``group`` started."""
    _STARTS.labels(kind, str(group)).inc()


def run_failed(kind: str, group: Any) -> None:
    """A run ended in an error."""
    _FAILURES.labels(kind, str(group)).inc()


def failover(kind: str, group: Any) -> None:
    """A job was taken over from a node that is gone."""
    _FAILOVERS.labels(kind, str(group)).inc()


def claimed(kind: str, group: Any, seconds: float) -> None:
    """A claim was won: ``seconds`` from claiming the job to holding it."""
    _CLAIMS.labels(kind, str(group)).observe(max(0.0, seconds))


def topic_labels(topic: Iterable[Any]) -> tuple[str, str]:
    """(kind, group) of a group channel's topic (``distkv_code run any G``,
    ``... all G``, ``... at NODE G``)."""
    parts = [str(x) for x in topic][2:]
    if not parts:
        return "", ""
    kind = "single" if parts[0] == "at" else parts[0]
    return kind, parts[-1] if len(parts) > 1 else ""


def labels_of(kind: str, state_subpath: Iterable[Any]) -> tuple[str, str]:
    """(kind, group) of a runner, from its kind and state subpath
    (``any G``, ``all G NODE``, ``at NODE G``; empty: every group)."""
    sub = [str(x) for x in state_subpath]
    if kind == "single":
        return kind, sub[2] if len(sub) > 2 else ""
    return kind, sub[1] if len(sub) > 1 else ""


#: One job's place in the jobs-by-state gauge: (kind, group, state word).
JobCount = tuple[str, str, str]


class DaemonCollector(Collector):
    """What a runner daemon's metrics read from its runners when scraped:
    ``distkv_run_jobs`` (``jobs()`` returns {(kind, group, state): n}, the
    jobs as this runner sees them) and ``distkv_run_messages_dropped``
    (``dropped()`` returns {(kind, group): n}, what its groups did not
    believe).  Both run in the event loop (the metrics server's thread asks
    through ``trio.from_thread``), so they read the mirrors while nothing
    changes them."""

    def __init__(
        self, jobs: Callable[[], dict[JobCount, int]], dropped: Callable[[], dict[tuple[str, str], int]]
    ) -> None:
        self._jobs = jobs
        self._dropped = dropped
        self._token = trio.lowlevel.current_trio_token()

    def _ask(self, fn: Callable[[], dict[Any, int]]) -> dict[Any, int]:
        try:
            res: dict[Any, int] = trio.from_thread.run_sync(fn, trio_token=self._token)
            return res
        except Exception as exc:  # the loop is gone (stopping): nothing
            logger.debug("metrics: %r", exc)
            return {}

    def collect(self) -> Iterable[Metric]:
        _, text, labels = METRICS["distkv_run_jobs"]
        g = GaugeMetricFamily("distkv_run_jobs", text, labels=labels)
        for (kind, group, state), n in sorted(self._ask(self._jobs).items()):
            g.add_metric([kind, group, state], n)
        yield g
        _, text, labels = METRICS["distkv_run_messages_dropped"]
        c = CounterMetricFamily("distkv_run_messages_dropped", text, labels=labels)
        for (kind, group), n in sorted(self._ask(self._dropped).items()):
            c.add_metric([kind, group], n)
        yield c


def serve_metrics(host: str, port: int) -> Callable[[], None]:
    """Serve `REGISTRY` at ``http://HOST:PORT/metrics`` from a thread of
    its own (prometheus-client's server); return the function that stops
    it.  Raises OSError when the address cannot be bound."""
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        if thread is not threading.current_thread():
            thread.join(5)

    return stop
