"""What `GET /api/v1/live` returns (pydantic): the gateway's figures right now.

Counts are cumulative since the gateway started (`core.service_counts`): a reader takes
the difference of two answers for rates and percentiles (`podium top` does, with
`core.histogram.quantile` over the difference of `latency_buckets`); a count smaller than
the previous answer's means the gateway restarted. Shared by the API and the SDK.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from podium.core.access import DEFAULT_PROJECT
from podium.core.metric_names import LATENCY_BUCKETS
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.service_counts import ServiceCounts


class LiveCounts(BaseModel):
    """Cumulative counts of an endpoint (total latency) or a replica (upstream time)."""

    requests: int = 0
    by_class: list[int] = Field(
        default_factory=lambda: [0] * 6,
        description="answers per status // 100; index 0: none (the client left first)",
    )
    latency_sum_s: float = 0.0
    latency_buckets: list[int] = Field(
        default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1),
        description="per bound of `latency_bounds_s`, +Inf last (not cumulative)",
    )
    bytes_in: int = 0
    bytes_out: int = 0

    @classmethod
    def of(cls, counts: ServiceCounts | None) -> LiveCounts:
        if counts is None:
            return cls()
        return cls(
            requests=counts.requests,
            by_class=list(counts.by_class),
            latency_sum_s=counts.latency_sum,
            latency_buckets=list(counts.latency_buckets),
            bytes_in=counts.bytes_in,
            bytes_out=counts.bytes_out,
        )


class LiveResources(BaseModel):
    """The newest point of the metrics history (at most a few intervals old), else nulls."""

    at: float | None = Field(None, description="unix seconds: the start of that point")
    cpu_percent: float | None = Field(None, description="100 = one core busy")
    rss_bytes: int | None = None
    gpu_util_percent: float | None = None
    gpu_memory_bytes: int | None = None


class LiveReplica(BaseModel):
    replica_id: str
    revision: int
    state: ReplicaState
    in_flight: int = 0
    counts: LiveCounts = Field(default_factory=LiveCounts)
    resources: LiveResources = Field(default_factory=LiveResources)


class LiveEndpoint(BaseModel):
    name: str  # within its project
    project: str = DEFAULT_PROJECT
    key: str = ""  # `core.access.endpoint_key`
    status: EndpointStatus
    ready: int = Field(description="replicas in the routing table now")
    desired: int
    in_flight: int = 0
    held: int = Field(0, description="requests the activator holds for a replica")
    counts: LiveCounts = Field(default_factory=LiveCounts)
    resources: LiveResources = Field(default_factory=LiveResources)
    replicas: list[LiveReplica] = Field(default_factory=list)


class LiveRecords(BaseModel):
    """The request records' buffer (server-wide): offered, dropped when full, waiting."""

    offered: int
    dropped: int
    buffered: int
    lost: int = 0  # taken by the writer but not stored (the store refused them, or shutdown)


class LiveView(BaseModel):
    taken_at: float = Field(description="unix seconds: when the gateway's counts were read")
    latency_bounds_s: list[float] = Field(default_factory=lambda: list(LATENCY_BUCKETS))
    endpoints: list[LiveEndpoint] = Field(default_factory=list)
    records: LiveRecords | None = Field(None, description="null: request records are off")
