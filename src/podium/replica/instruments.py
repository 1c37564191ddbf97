"""Prometheus metrics of one replica, in a registry of its own (never the global one).

    podium_replica_in_flight                  predictions running now
    podium_replica_queued                     requests waiting for a slot
    podium_replica_requests_total{protocol,code}
    podium_replica_request_seconds{protocol}  latency of prediction requests
    podium_replica_cpu_seconds_total          CPU time of the replica and its children
    podium_replica_memory_bytes               resident memory of the replica and its children

Gauges that model code registers in prometheus_client's default registry are rendered
after these, so a `custom` scaling rule can read them.

Only prediction requests (`hf`: `POST /`, `v2`: infer) are counted; probes and metadata
reads are not, so the numbers say what the model is doing.
"""

from __future__ import annotations

from collections.abc import Iterable

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from podium.core.metric_names import LATENCY_BUCKETS
from podium.replica.concurrency import Limiter

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ReplicaMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, limiter: Limiter) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(ProcessTreeCollector())
        in_flight = Gauge(
            "podium_replica_in_flight", "Predictions running now", registry=self.registry
        )
        in_flight.set_function(lambda: limiter.in_flight)
        queued = Gauge(
            "podium_replica_queued",
            "Requests waiting for a prediction slot",
            registry=self.registry,
        )
        queued.set_function(lambda: limiter.queued)
        self._requests = Counter(
            "podium_replica_requests",
            "Prediction requests answered, by protocol and status code",
            ["protocol", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "podium_replica_request_seconds",
            "Prediction request latency, from the first byte read to the answer",
            ["protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._batch_size = Histogram(
            "podium_replica_batch_size",
            "Requests answered by one predict_batch call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_batch(self, size: int) -> None:
        self._batch_size.observe(size)

    def observe(self, protocol: str, code: int, seconds: float) -> None:
        self._requests.labels(protocol, str(code)).inc()
        self._latency.labels(protocol).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(REGISTRY)


class ProcessTreeCollector(Collector):
    """CPU time and resident memory of this process and its children (a `command`
    runtime's server is a child), read when scraped; the autoscaler's cpu/memory rules."""

    def __init__(self) -> None:
        self._proc = psutil.Process()

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        cpu, rss = 0.0, 0
        try:
            times = self._proc.cpu_times()
            cpu = times.user + times.system + times.children_user + times.children_system
            rss = self._proc.memory_info().rss
            children = self._proc.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            try:
                t = child.cpu_times()
                cpu += t.user + t.system
                rss += child.memory_info().rss
            except psutil.Error:
                continue
        yield CounterMetricFamily(
            "podium_replica_cpu_seconds", "CPU time of the replica and its children", value=cpu
        )
        yield GaugeMetricFamily(
            "podium_replica_memory_bytes",
            "Resident memory of the replica and its children",
            value=rss,
        )
