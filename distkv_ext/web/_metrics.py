"""The status page's ``/metrics``: what it sees, as ``distkv_run_*``.

The same names as a runner daemon's (``run all --metrics``, see
`distkv_ext.run.METRICS`), counted from the outside: jobs by state (all
jobs shown, once each), runs started and failed and jobs taken over from
a node that was gone (seen in the states since the page started), the
claim latency (from a claim on a group channel to the state naming the
claimer), and the messages of the group channels the page dropped as
unusable.
"""

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from distkv_ext.run import CLAIM_BUCKETS, METRICS, STATUS_WORDS

from ._model import StatusModel
from ._views import job_list, job_rows

__all__ = ["PageCollector", "metrics_text", "CONTENT_TYPE"]

#: The content type of ``/metrics`` (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(name: str) -> tuple[str, list[str]]:
    _, text, labels = METRICS[name]
    return text, list(labels)


class PageCollector(Collector):
    """Collects the ``distkv_run_*`` metrics from a `StatusModel`."""

    def __init__(self, model: StatusModel) -> None:
        self.model = model

    def collect(self) -> Iterable[Metric]:
        m = self.model
        text, labels = _labels("distkv_run_jobs")
        jobs = GaugeMetricFamily("distkv_run_jobs", text, labels=labels)
        counts: dict[tuple[str, str, str], int] = {}
        groups: set[tuple[str, str]] = set()
        for ref in job_list(m):
            groups.add((ref.kind, str(ref.group)))
            for row in job_rows(m, ref):
                k = (ref.kind, str(ref.group), row["state"])
                counts[k] = counts.get(k, 0) + 1
        for kind, group in sorted(groups):
            for word in STATUS_WORDS:
                counts.setdefault((kind, group, word), 0)
        for k, n in sorted(counts.items()):
            jobs.add_metric(list(k), n)
        yield jobs
        for name, seen in (
            ("distkv_run_starts", m.starts),
            ("distkv_run_failures", m.failures),
            ("distkv_run_failovers", m.failovers),
        ):
            text, labels = _labels(name)
            c = CounterMetricFamily(name, text, labels=labels)
            for g in sorted(groups | set(seen)):
                c.add_metric(list(g), seen.get(g, 0))
            yield c
        text, labels = _labels("distkv_run_claim_seconds")
        h = HistogramMetricFamily("distkv_run_claim_seconds", text, labels=labels)
        for g, (bucket_counts, total) in sorted(m.claim_latency.items()):
            # the model counts an observation in every bucket it fits: cumulative already
            bounds = ["+Inf" if b == float("inf") else repr(b) for b in (*CLAIM_BUCKETS, float("inf"))]
            h.add_metric(list(g), list(zip(bounds, map(float, bucket_counts), strict=True)), total[0])
        yield h
        text, labels = _labels("distkv_run_messages_dropped")
        d = CounterMetricFamily("distkv_run_messages_dropped", text, labels=labels)
        dropped: dict[tuple[str, str], int] = {}
        for (kind, group, _), obs in m.observers.items():
            dk = (kind, str(group))
            dropped[dk] = dropped.get(dk, 0) + int(getattr(obs, "dropped", 0))
        for dk, n in sorted(dropped.items()):
            d.add_metric(list(dk), n)
        yield d


def metrics_text(model: StatusModel, registry: CollectorRegistry | None = None) -> bytes:
    """The metrics of ``model`` in Prometheus' text format."""
    if registry is None:
        registry = CollectorRegistry()
        registry.register(PageCollector(model))
    return generate_latest(registry)
