"""Per-endpoint and per-replica request counters, and the Prometheus collector.

The hot path only does integer and float additions on slotted objects; the Prometheus
families are built at scrape time by `GatewayCollector.collect`, and the cumulative
`core.service_counts.ServiceSnapshot` (the metrics history's source) by
`Meters.service_snapshot`, on the thread that asks.

A replica's counts (`ReplicaMeter`) are of the requests forwarded to it that reached it
or may have (answered, crashed, closed, timed out, answered badly), with the upstream time
(sent to the replica to its last byte relayed); a connection that failed before the request
could reach the model is not one of its requests. They are forgotten once the replica has
been out of the routing table for `FORGET_AFTER_S` (see `service_snapshot`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podium.core.metric_names import LATENCY_BUCKETS
from podium.core.routing import EndpointLoad
from podium.core.service_counts import ReplicaCounts, ServiceCounts, ServiceSnapshot

# How long a replica's counts are kept once it left the routing table: longer than any
# sampling interval, so the metrics sampler reads its final counts (and a replica that
# drops out of the table for a while, e.g. failing readiness, keeps counting).
FORGET_AFTER_S = 300.0


class EndpointMeter:
    """Counters of one endpoint. Plain attributes: one event loop thread writes them."""

    __slots__ = (
        "buckets",
        "by_class",
        "bytes_in",
        "bytes_out",
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
        self.bytes_in = 0  # request bodies forwarded to replicas
        self.bytes_out = 0  # response bodies of replicas relayed to clients

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

    def counts(self) -> ServiceCounts:
        """Its cumulative counts (read from another thread: each list is copied whole).

        `requests` are the requests that *finished* (the sum of the status classes), like
        the latency figures: `self.requests` counts them as they start, so a point of the
        history would otherwise divide finished latency by started requests."""
        by_class = tuple(self.by_class)
        return ServiceCounts(
            requests=sum(by_class),
            by_class=(by_class[0], by_class[1], by_class[2], by_class[3], by_class[4], by_class[5]),
            latency_sum=self.latency_sum,
            latency_buckets=tuple(self.buckets),
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )


class ReplicaMeter:
    """Counters of one replica: requests that reached it, by the class of its answer (5 for
    a crash, a closed connection, a timeout, a bad answer), upstream time, body bytes."""

    __slots__ = (
        "buckets",
        "by_class",
        "bytes_in",
        "bytes_out",
        "endpoint",
        "gone_since",
        "latency_sum",
        "requests",
    )

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.requests = 0
        self.by_class = [0, 0, 0, 0, 0, 0]
        self.latency_sum = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.bytes_in = 0
        self.bytes_out = 0
        self.gone_since: float | None = None  # monotonic: first seen out of the table

    def finish(self, status: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
        """One request to this replica ended (`status`: its answer, or what the gateway
        answered for it), `seconds` after it was sent."""
        self.requests += 1
        cls = status // 100
        self.by_class[cls if 0 <= cls <= 5 else 0] += 1
        self.latency_sum += seconds
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out

    def counts(self) -> ServiceCounts:
        by_class = self.by_class
        return ServiceCounts(
            requests=self.requests,
            by_class=(by_class[0], by_class[1], by_class[2], by_class[3], by_class[4], by_class[5]),
            latency_sum=self.latency_sum,
            latency_buckets=tuple(self.buckets),
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )


class Meters:
    """All endpoint meters of one gateway, created on first use of an endpoint name."""

    def __init__(self) -> None:
        self._meters: dict[str, EndpointMeter] = {}
        self.replicas: dict[str, ReplicaMeter] = {}
        self.unrouted = 0  # requests for a path or endpoint the gateway does not know

    def replica(self, replica_id: str, endpoint: str) -> ReplicaMeter:
        meter = self.replicas.get(replica_id)
        if meter is None:
            meter = self.replicas[replica_id] = ReplicaMeter(endpoint)
        return meter

    def get(self, name: str) -> EndpointMeter:
        meter = self._meters.get(name)
        if meter is None:
            meter = self._meters[name] = EndpointMeter(name)
        return meter

    def __iter__(self) -> Iterator[EndpointMeter]:
        return iter(list(self._meters.values()))

    def snapshot(self) -> dict[str, EndpointLoad]:
        return {m.name: m.load() for m in self}

    def service_snapshot(
        self, routed: Collection[str], taken_at: float, now: float
    ) -> ServiceSnapshot:
        """Cumulative counts of every endpoint and replica (`taken_at`: unix seconds).

        `routed` are the replica ids in the routing table now (`now`: monotonic seconds). A
        replica out of it is still reported, and forgotten once it has been out for
        `FORGET_AFTER_S`: every sampler reading more often than that sees its final counts,
        and memory stays bounded by the replicas of the last few minutes. (A request still
        finishing on a forgotten replica starts it again from zero: a reader takes a
        negative difference as a restart.)"""
        replicas: dict[str, ReplicaCounts] = {}
        for replica_id, meter in list(self.replicas.items()):  # one C-level copy
            if replica_id in routed:
                meter.gone_since = None
            elif meter.gone_since is None:
                meter.gone_since = now
            elif now - meter.gone_since > FORGET_AFTER_S:
                self.replicas.pop(replica_id, None)
                continue
            replicas[replica_id] = ReplicaCounts(meter.endpoint, meter.counts())
        endpoints = {m.name: m.counts() for m in self}
        return ServiceSnapshot(taken_at, endpoints, replicas)


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
        bytes_in = CounterMetricFamily(
            "podium_gateway_request_bytes",
            "Request body bytes forwarded to replicas.",
            labels=["endpoint"],
        )
        bytes_out = CounterMetricFamily(
            "podium_gateway_response_bytes",
            "Response body bytes of replicas relayed to clients.",
            labels=["endpoint"],
        )
        for m in self._meters:
            crashes.add_metric([m.name], m.replica_crashes)
            bytes_in.add_metric([m.name], m.bytes_in)
            bytes_out.add_metric([m.name], m.bytes_out)
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
        replica_requests = CounterMetricFamily(
            "podium_gateway_replica_requests",
            "Requests that reached each replica, by the status class of its answer (5xx also "
            "for a crash, a closed connection, a timeout or a bad answer).",
            labels=["endpoint", "replica", "code"],
        )
        replica_seconds = CounterMetricFamily(
            "podium_gateway_replica_upstream_seconds",
            "Upstream time of each replica's requests (sent to its last byte relayed), summed.",
            labels=["endpoint", "replica"],
        )
        for replica_id, r in sorted(list(self._meters.replicas.items())):
            for i, label in enumerate(_CLASS_LABELS):
                if r.by_class[i]:
                    replica_requests.add_metric([r.endpoint, replica_id, label], r.by_class[i])
            replica_seconds.add_metric([r.endpoint, replica_id], r.latency_sum)
        return [
            bytes_in,
            bytes_out,
            replica_requests,
            replica_seconds,
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
