"""The metrics history as the API answers it (`GET /api/v1/endpoints/{name}/metrics`) and
the SDK reads it: aligned arrays ready to plot, and the series one may ask for.

Every series is one value per step (`timestamps[i]` is the step's start, unix seconds);
null where no point was stored (the server was down, the endpoint did not exist yet).
`SERIES` names each series with its unit; docs/observability.md says how each is measured.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from podium.core.phases import EventKind
from podium.core.settings import ObservabilitySettings

# name -> unit (counts are per step; gauges are the step's mean or last value).
SERIES: dict[str, str] = {
    "requests": "requests",
    "rpm": "requests/min",
    "ok": "requests",
    "errors_4xx": "requests",
    "errors_5xx": "requests",
    "cancelled": "requests",
    "error_rate": "fraction",
    "latency_avg_ms": "ms",
    "p50_ms": "ms",
    "p95_ms": "ms",
    "p99_ms": "ms",
    "in_flight": "requests",
    "held": "requests",
    "ready": "replicas",
    "desired": "replicas",
    "scale": "replicas",
    "cpu_percent": "% of one core",
    "rss_bytes": "bytes",
    "bytes_in": "bytes",
    "bytes_out": "bytes",
    "gpu_util_percent": "% of one GPU",
    "gpu_memory_bytes": "bytes",
}
GPU_SERIES = frozenset({"gpu_util_percent", "gpu_memory_bytes"})
ENDPOINT_ONLY = frozenset({"held", "ready", "desired", "scale"})  # null on a replica's points
MAX_STEPS = 1000  # `step=auto` picks the finest resolution giving at most about this many
MAX_RANGE_S = 400 * 86400  # the widest range one may ask for

# The events shown with the graphs: why replicas came and went.
SCALING_EVENTS = (
    EventKind.SCALED,
    EventKind.REPLICA_READY,
    EventKind.REPLICA_STOPPED,
    EventKind.REPLICA_CRASHED,
    EventKind.REPLICA_OOM,
    EventKind.REPLICA_HUNG,
    EventKind.REPLICA_UNHEALTHY,
    EventKind.ROLLOUT,
)


def finest_resolution(obs: ObservabilitySettings) -> int:
    """The resolution of the sampled points: the interval in whole seconds (10 by default)."""
    return max(1, round(obs.metrics_interval_s))


def stored_resolutions(obs: ObservabilitySettings) -> dict[int, float]:
    """Each stored resolution (the sampled one, 1 min, 1 h), finest first, and how long
    its points are kept (seconds)."""
    kept = {
        60: obs.metrics_1m_max_age_s,
        3600: obs.metrics_1h_max_age_s,
        finest_resolution(obs): obs.metrics_10s_max_age_s,
    }
    return dict(sorted(kept.items()))


class MetricEvent(BaseModel):
    ts: float  # unix seconds
    kind: EventKind
    message: str


class MetricHistory(BaseModel):
    """Aligned series of one endpoint (or one of its replicas) over [from, to)."""

    model_config = ConfigDict(populate_by_name=True)

    step: int  # seconds between two timestamps (the resolution read)
    from_: int = Field(alias="from")  # unix s: the first step's start
    to: int  # unix s: the end of the last step
    replica: str | None = None  # None: the endpoint itself
    timestamps: list[int]
    series: dict[str, list[float | None]]
    events: list[MetricEvent] = Field(default_factory=list)
