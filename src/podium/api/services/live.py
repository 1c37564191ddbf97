"""The live view (`GET /api/v1/live`): the gateway's counts now, with the store's endpoints.

Per endpoint: its status and desired replicas (the store), ready replicas (the routing
table, which is what the gateway routes to), the gateway's cumulative counts, in flight and
held (`LiveSource`), and the newest CPU/memory/GPU point of the metrics history; the same
per replica. Three store reads, whatever the number of endpoints: the endpoints, every
replica row, the newest points (`store.stats.latest_gauges`, at the sampled resolution).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from podium.api.deps import LiveSource
from podium.core.live_schemas import (
    LiveCounts,
    LiveEndpoint,
    LiveRecords,
    LiveReplica,
    LiveResources,
    LiveView,
)
from podium.core.metric_schemas import finest_resolution
from podium.core.phases import ReplicaState
from podium.core.routing import RoutingSource
from podium.core.service_counts import ServiceSnapshot
from podium.core.settings import Settings
from podium.store import Database
from podium.store.records import ReplicaRecord
from podium.store.stats import ENDPOINT, Gauges

_ACTIVE = (ReplicaState.STARTING, ReplicaState.READY, ReplicaState.DRAINING)


def gauges_max_age_s(settings: Settings) -> float:
    """How old the newest point may be and still be shown as "now": three intervals, at
    least a minute (the sampler runs in the controller's loop, which may lag)."""
    return max(60.0, 3 * settings.observability.metrics_interval_s)


def resources(g: Gauges | None) -> LiveResources:
    if g is None:
        return LiveResources()
    return LiveResources(
        at=float(g.ts),
        cpu_percent=g.cpu_percent,
        rss_bytes=g.rss_bytes,
        gpu_util_percent=g.gpu_util_percent,
        gpu_memory_bytes=g.gpu_memory_bytes,
    )


def live_view(
    db: Database,
    settings: Settings,
    source: LiveSource,
    routing: RoutingSource | None,
    *,
    projects: Collection[str] | None,
    key: str | None = None,
) -> LiveView:
    """The endpoints of `projects` (None: all), or only the one with `key` (its project
    must be among them: the route checks it; NotFound when there is no such endpoint)."""
    snapshot = source.service_snapshot()
    loads = source.load_snapshot()
    with db.unit_of_work(read_only=True) as uow:
        if key is not None:
            records = [uow.endpoints.get(key)]
        else:
            records = uow.endpoints.list(projects=projects)
        keys = [r.name for r in records]
        by_endpoint: dict[str, list[ReplicaRecord]] = defaultdict(list)
        for r in uow.replicas.list(endpoint=key):
            if r.state in _ACTIVE:
                by_endpoint[r.endpoint].append(r)
        gauges = uow.stats.latest_gauges(
            keys,
            resolution=finest_resolution(settings.observability),
            max_age_s=gauges_max_age_s(settings),
        )
    table = routing.table.endpoints if routing is not None else {}
    endpoints: list[LiveEndpoint] = []
    for rec in records:
        replicas = [
            _replica(r, source, snapshot, gauges.get((rec.name, r.replica_id)))
            for r in by_endpoint.get(rec.name, [])
        ]
        load = loads.get(rec.name)
        route = table.get(rec.name)
        if route is not None:
            ready = len(route.replicas)
        else:  # no routing table here: the store's ready replicas
            ready = sum(1 for r in replicas if r.state is ReplicaState.READY)
        endpoints.append(
            LiveEndpoint(
                name=rec.bare_name,
                project=rec.project,
                key=rec.name,
                status=rec.status,
                ready=ready,
                desired=rec.desired_replicas,
                in_flight=load.in_flight if load is not None else 0,
                held=load.held if load is not None else 0,
                counts=LiveCounts.of(snapshot.endpoints.get(rec.name)),
                resources=resources(gauges.get((rec.name, ENDPOINT))),
                replicas=replicas,
            )
        )
    return LiveView(taken_at=snapshot.taken_at, endpoints=endpoints, records=_records(source))


def _replica(
    r: ReplicaRecord, source: LiveSource, snapshot: ServiceSnapshot, g: Gauges | None
) -> LiveReplica:
    counted = snapshot.replicas.get(r.replica_id)
    return LiveReplica(
        replica_id=r.replica_id,
        revision=r.revision,
        state=r.state,
        in_flight=source.outstanding(r.replica_id),
        counts=LiveCounts.of(counted.counts if counted is not None else None),
        resources=resources(g),
    )


def _records(source: LiveSource) -> LiveRecords | None:
    """The buffer's counters (server-wide: dropped counts reveal nothing of any project)."""
    buffer = source.records
    if buffer is None:
        return None
    return LiveRecords(
        offered=buffer.offered, dropped=buffer.dropped, buffered=len(buffer), lost=buffer.lost
    )
