"""The metrics history's figures on the server's `/metrics`: the sampler's latest sample
(`MetricsSampler.latest`) as Prometheus gauges, and its samples by outcome.

The sampler runs on the controller's thread and replaces `latest` whole with each sample it
writes; a scrape (the server's thread) reads that one reference, so it sees one sample
whole, and only the endpoints and replicas that sample measured: a deleted endpoint's or a
stopped replica's series are gone at the next sample (the series stay bounded). GPU series
are present only for replicas whose GPU was measured (NVML present). Names are a public
interface (docs/metrics.md):

    podium_replica_cpu_percent{endpoint,replica}              100 = one core busy
    podium_replica_memory_rss_bytes{endpoint,replica}
    podium_replica_gpu_utilization_percent{endpoint,replica}  only with a measured GPU
    podium_replica_gpu_memory_bytes{endpoint,replica}         only with a measured GPU
    podium_endpoint_replicas_ready{endpoint}
    podium_endpoint_replicas_desired{endpoint}
    podium_metrics_samples_total{outcome}                     ok | failed
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podium.control.metrics_history import MetricsSampler, SampleOutcome

_REPLICA = ["endpoint", "replica"]


class HistoryCollector(Collector):
    """Renders the sampler's latest sample and its sample counts (see the module docstring)."""

    def __init__(self, sampler: Callable[[], MetricsSampler]) -> None:
        self._sampler = sampler  # the controller's current one (each lead tenure has its own)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        latest = self._sampler().latest  # one sample, whole (replaced, never changed)
        cpu = GaugeMetricFamily(
            "podium_replica_cpu_percent",
            "CPU use of each replica at the latest sample (100 = one core busy).",
            labels=_REPLICA,
        )
        rss = GaugeMetricFamily(
            "podium_replica_memory_rss_bytes",
            "Resident memory of each replica (and its children) at the latest sample.",
            labels=_REPLICA,
        )
        gpu = GaugeMetricFamily(
            "podium_replica_gpu_utilization_percent",
            "GPU utilisation of each replica at the latest sample (only with a measured GPU).",
            labels=_REPLICA,
        )
        gpu_memory = GaugeMetricFamily(
            "podium_replica_gpu_memory_bytes",
            "GPU memory used by each replica at the latest sample (only with a measured GPU).",
            labels=_REPLICA,
        )
        ready = GaugeMetricFamily(
            "podium_endpoint_replicas_ready",
            "Ready replicas of each endpoint at the latest sample.",
            labels=["endpoint"],
        )
        desired = GaugeMetricFamily(
            "podium_endpoint_replicas_desired",
            "Desired replicas of each endpoint at the latest sample (the autoscaler's).",
            labels=["endpoint"],
        )
        for (endpoint, replica), p in sorted(latest.items()):
            if not replica:  # the endpoint's own point
                if p.ready is not None:
                    ready.add_metric([endpoint], p.ready)
                if p.desired is not None:
                    desired.add_metric([endpoint], p.desired)
                continue
            labels = [endpoint, replica]
            if p.cpu_percent is not None:
                cpu.add_metric(labels, p.cpu_percent)
            if p.rss_bytes is not None:
                rss.add_metric(labels, p.rss_bytes)
            if p.gpu_util_percent is not None:
                gpu.add_metric(labels, p.gpu_util_percent)
            if p.gpu_memory_bytes is not None:
                gpu_memory.add_metric(labels, p.gpu_memory_bytes)
        samples = CounterMetricFamily(
            "podium_metrics_samples",
            "Samples of the metrics history, by outcome (failed: logged, the next one "
            "covers the interval too).",
            labels=["outcome"],
        )
        counts = dict(self._sampler().samples)
        for outcome in SampleOutcome:
            samples.add_metric([outcome.value], counts.get(outcome, 0))
        return [cpu, rss, gpu, gpu_memory, ready, desired, samples]
