"""What the gateway counted, per endpoint and per replica, cumulative since it started.

`GatewayView.service_snapshot()` returns a `ServiceSnapshot`; the controller's metrics
sampler (`control.metrics_history`) takes one every interval and stores the differences as
points of the metrics history; `podium top` takes the differences of the live figures
(`GET /api/v1/live`) between two refreshes. Counts only grow (a gateway that restarts starts
again from zero: a negative difference is read as a restart, and the new count is the
difference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from podium.core.metric_names import LATENCY_BUCKETS

N_BUCKETS = len(LATENCY_BUCKETS) + 1  # the latency histogram's buckets, +Inf included


def _zero_buckets() -> tuple[int, ...]:
    return (0,) * N_BUCKETS


@dataclass(frozen=True, slots=True)
class ServiceCounts:
    """Cumulative counts of one endpoint or replica (latency in seconds). Every figure is of
    requests that finished: `requests == sum(by_class)`."""

    requests: int = 0
    by_class: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)  # [status // 100]; 0: none
    latency_sum: float = 0.0
    latency_buckets: tuple[int, ...] = field(default_factory=_zero_buckets)
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(frozen=True, slots=True)
class ReplicaCounts:
    """A replica's counts: requests forwarded to it, their status and upstream time."""

    endpoint: str  # the endpoint's key
    counts: ServiceCounts


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    taken_at: float = 0.0  # unix seconds
    endpoints: Mapping[str, ServiceCounts] = field(default_factory=dict)
    replicas: Mapping[str, ReplicaCounts] = field(default_factory=dict)
