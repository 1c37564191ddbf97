"""Per-endpoint request counters, and the Prometheus collector that renders them.

The hot path only does integer and float additions on a slotted object; the
Prometheus families are built at scrape time by `GatewayCollector.collect`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podium.core.metric_names import LATENCY_BUCKETS
from podium.core.routing import EndpointLoad


class EndpointMeter:
    """Counters of one endpoint. Plain attributes: one event loop thread writes them."""

    __slots__ = (
        "buckets",
        "by_class",
        "held",
        "in_flight",
        "latency_count",
        "latency_sum",
        "name",
        "replica_crashes",
        "replica_failures",
        "requests",
        "retries",
        "served_by_revision",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.in_flight = 0  # every request of the endpoint in the gateway, held ones too
        self.held = 0  # of those, waiting in the activator for a replica slot
        self.by_class = [0, 0, 0, 0, 0, 0]  # index = status // 100 (0 = no response sent)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.replica_failures = 0
        self.replica_crashes = 0  # requests whose replica crashed while serving them
        self.retries = 0  # requests re-sent to another replica after a failed connection
        self.served_by_revision: dict[int, int] = {}  # 2xx/3xx answers of replicas

    def served(self, revision: int) -> None:
        """A replica of `revision` answered a request successfully (2xx or 3xx)."""
        self.served_by_revision[revision] = self.served_by_revision.get(revision, 0) + 1

    def start(self) -> None:
        self.requests += 1
        self.in_flight += 1

    def finish(self, status: int, seconds: float) -> None:
        """One request is done; `status` is 0 when the client left before a response."""
        self.in_flight -= 1
        cls = status // 100
        self.by_class[cls if 0 <= cls <= 5 else 0] += 1
        self.latency_sum += seconds
        self.latency_count += 1
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1

    @property
    def errors(self) -> int:
        return self.by_class[5]

    def load(self) -> EndpointLoad:
        """Read from the controller's thread: the two counts may be a step apart."""
        held = self.held
        in_flight = max(0, self.in_flight - held)
        succeeded = self.by_class[2] + self.by_class[3]
        by_revision = dict(self.served_by_revision)  # one C-level copy: safe to read here
        return EndpointLoad(in_flight, held, self.requests, self.errors, succeeded, by_revision)


class Meters:
    """All endpoint meters of one gateway, created on first use of an endpoint name."""

    def __init__(self) -> None:
        self._meters: dict[str, EndpointMeter] = {}
        self.unrouted = 0  # requests for a path or endpoint the gateway does not know

    def get(self, name: str) -> EndpointMeter:
        meter = self._meters.get(name)
        if meter is None:
            meter = self._meters[name] = EndpointMeter(name)
        return meter

    def __iter__(self) -> Iterator[EndpointMeter]:
        return iter(list(self._meters.values()))

    def snapshot(self) -> dict[str, EndpointLoad]:
        return {m.name: m.load() for m in self}


_CLASS_LABELS = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


class GatewayCollector(Collector):
    """Renders `Meters` (and per-replica outstanding counts) when Prometheus scrapes."""

    def __init__(self, meters: Meters, outstanding: Callable[[], Mapping[str, int]]) -> None:
        self._meters = meters
        self._outstanding = outstanding

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "podium_gateway_requests",
            "Requests answered by the gateway, by endpoint and status class.",
            labels=["endpoint", "code"],
        )
        in_flight = GaugeMetricFamily(
            "podium_gateway_in_flight",
            "Requests in flight through the gateway (held ones too).",
            labels=["endpoint"],
        )
        held = GaugeMetricFamily(
            "podium_gateway_held",
            "Requests the gateway holds until a replica slot is free (none ready, or all busy).",
            labels=["endpoint"],
        )
        latency = HistogramMetricFamily(
            "podium_gateway_request_duration_seconds",
            "Time from request to the last response byte.",
            labels=["endpoint"],
        )
        failures = CounterMetricFamily(
            "podium_gateway_replica_failures",
            "Connections to a replica that failed before a response (then retried).",
            labels=["endpoint"],
        )
        retries = CounterMetricFamily(
            "podium_gateway_retries",
            "Requests re-sent to another replica after a connection failed before the request "
            "reached the model.",
            labels=["endpoint"],
        )
        crashes = CounterMetricFamily(
            "podium_gateway_replica_crashes",
            "Requests whose replica crashed while serving them (answered 502, not retried).",
            labels=["endpoint"],
        )
        for m in self._meters:
            crashes.add_metric([m.name], m.replica_crashes)
            for i, label in enumerate(_CLASS_LABELS):
                if m.by_class[i]:
                    requests.add_metric([m.name, label], m.by_class[i])
            in_flight.add_metric([m.name], m.in_flight)
            held.add_metric([m.name], m.held)
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), m.buckets, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            latency.add_metric([m.name], buckets, m.latency_sum)
            failures.add_metric([m.name], m.replica_failures)
            retries.add_metric([m.name], m.retries)
        unrouted = CounterMetricFamily(
            "podium_gateway_unrouted_requests",
            "Requests for an unknown endpoint or path.",
        )
        unrouted.add_metric([], self._meters.unrouted)
        outstanding = GaugeMetricFamily(
            "podium_gateway_replica_outstanding",
            "Requests in flight to each replica.",
            labels=["replica"],
        )
        for replica_id, count in sorted(self._outstanding().items()):
            outstanding.add_metric([replica_id], count)
        return [
            requests,
            in_flight,
            held,
            latency,
            failures,
            retries,
            crashes,
            unrouted,
            outstanding,
        ]


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
