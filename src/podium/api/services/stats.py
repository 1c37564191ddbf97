"""What endpoints and replicas served, for the endpoint list and detail (issue 12).

The figures come from the metrics history (`store.stats`: the points of the sampled
resolution, `PODIUM_METRICS_INTERVAL_S`; one query for a whole list) and the replicas'
ready times; docs/observability.md says how each is computed. Pure functions over
records: the views module reads the store (`traffic`) and calls these.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from podium.core.metric_schemas import finest_resolution
from podium.core.phases import ReplicaState
from podium.core.settings import Settings
from podium.core.spec import InstanceType
from podium.store import UnitOfWork
from podium.store.records import ReplicaRecord
from podium.store.stats import ENDPOINT, Key, Traffic

# A replica serves while ready, and still finishes what it holds while draining.
SERVING = frozenset({ReplicaState.READY, ReplicaState.DRAINING})
_NONE = Traffic()


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def traffic(uow: UnitOfWork, settings: Settings, endpoints: Collection[str]) -> dict[Key, Traffic]:
    """What `endpoints` and their replicas served (one query), read at the resolution the
    sampler writes (`finest_resolution`): another one would find no point at all."""
    return uow.stats.traffic(endpoints, resolution=finest_resolution(settings.observability))


def ready_at(rec: ReplicaRecord, ready_event_at: datetime | None) -> datetime | None:
    """When a serving replica became ready: its `replica_ready` event, else (an adopted
    replica whose event is long gone) when it started; None when it is not serving."""
    if rec.state not in SERVING:
        return None
    at = ready_event_at or rec.started_at
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def uptime_s(since: datetime | None, now: float) -> float | None:
    if since is None:
        return None
    return round(max(0.0, now - since.timestamp()), 3)


def replica_figures(
    traffic: Traffic | None,
    since: datetime | None,
    instance: InstanceType | None,
    now: float,
) -> dict[str, Any]:
    """What one replica served, its uptime and size: the figure fields of `ReplicaPublic`
    (the views build each view once, with these; no copy after)."""
    t = traffic or _NONE
    return {
        "uptime_s": uptime_s(since, now),
        "requests": t.requests,
        "requests_per_min": _round(t.requests_per_min),
        "avg_latency_ms": _round(t.avg_latency_ms),
        "cpus": instance.cpus if instance is not None else None,
        "gpus": instance.gpus if instance is not None else None,
    }


def endpoint_figures(
    key: str,
    starts: Sequence[datetime | None],
    traffic: Mapping[Key, Traffic],
    now: float,
) -> dict[str, Any]:
    """The figure fields of `EndpointPublic` for the endpoint `key`: what it served
    (`traffic`) and its uptime; `starts`: its replicas' `ready_at` (None: not serving)."""
    serving = [s for s in starts if s is not None]
    t = traffic.get((key, ENDPOINT), _NONE)
    return {
        "requests": t.requests,
        "requests_per_min": _round(t.requests_per_min),
        "avg_latency_ms": _round(t.avg_latency_ms),
        "error_rate": _round(t.error_rate, 4),
        "uptime_s": uptime_s(min(serving), now) if serving else None,
    }
