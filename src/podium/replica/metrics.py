"""Prometheus metrics of one replica, in a registry of its own (never the global one).

    podium_replica_in_flight                  predictions running now
    podium_replica_queued                     requests waiting for a slot
    podium_replica_requests_total{protocol,code}
    podium_replica_request_seconds{protocol}  latency of prediction requests

Only prediction requests (`hf`: `POST /`, `v2`: infer) are counted; probes and metadata
reads are not, so the numbers say what the model is doing.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from podium.replica.concurrency import Limiter

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class ReplicaMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, limiter: Limiter) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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

    def observe(self, protocol: str, code: int, seconds: float) -> None:
        self._requests.labels(protocol, str(code)).inc()
        self._latency.labels(protocol).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
