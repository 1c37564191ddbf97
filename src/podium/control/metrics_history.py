"""The metrics history's sampler: every `metrics_interval_s` (10 s), one point per endpoint
and per replica into the store (`store.metrics`).

The controller calls `MetricsSampler.run` at the end of each pass; it does nothing until an
interval boundary has passed since its last sample. A sample reads the gateway's cumulative
counts (`GatewayView.service_snapshot`) and stores their differences from the previous
sample (a count that went down means the gateway restarted: the new count is the
difference), the gateway's in flight and held requests (`load_snapshot`, `outstanding`),
the replicas ready (the controller's state) and desired (the endpoint's record, as the
autoscaler just decided), and each replica's CPU, memory and GPU (`Backend.resources`; an
endpoint's figures are the sums over its replicas). A point starts at its interval's start
aligned to the resolution (`floor(start / res) * res`); an interval that ran late (a long
pass) is one point, the slots it spanned stay empty.

Quiet endpoints (no replica, nothing desired, served, in flight or held) get one point when
they turn quiet and none after while they stay so: 1,000 endpoints at zero would otherwise
write 8.6 million points a day that all say zero. Each sample writes a point of the
sampler's own series (`store.metrics.SAMPLED`) instead, which tells a quiet slot (zeros)
from a gap (no sample) for the readers (`store.metrics` module docstring).

When a sample crosses a minute or an hour, that minute (hour) is rolled up from the finer
points (`MetricRepo.roll_up`): points and rollups in one transaction per sample, and what
was rolled up is remembered only once it committed. A sampler's first write also rolls up
the closed minutes and hours of the last 25 hours that a stop left without a rollup
(`_catch_up`). Every `prune_every_s` each resolution
is pruned by age after that transaction, in bounded batches of their own (`_prune`). The
first run only takes the baseline snapshot. A failure is logged and never fails the
controller's pass; the counts of an interval whose write failed go into the next point.

The latest sample's figures stay in memory for the server's `/metrics`
(`control.history_metrics`): `latest` holds each endpoint's and replica's newest point,
`samples` counts the samples by outcome.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from enum import StrEnum

from podium.backends.base import Backend, ReplicaResources
from podium.control.state import ControllerState
from podium.core.clock import Clock
from podium.core.metric_schemas import finest_resolution, stored_resolutions
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.routing import EndpointLoad, GatewayView
from podium.core.service_counts import ServiceCounts, ServiceSnapshot
from podium.core.settings import Settings
from podium.store.db import Database, UnitOfWork
from podium.store.metrics import PRUNE_BATCH, SAMPLED, MetricPoint
from podium.store.records import EndpointRecord

log = logging.getLogger("podium.control")

_MEASURED = (ReplicaState.STARTING, ReplicaState.READY, ReplicaState.DRAINING)
PRUNE_BATCHES = 20  # prune statements one sample runs at most (each deletes PRUNE_BATCH)
CATCH_UP_S = 25 * 3600  # how far back a first sample rolls up what a stop left out


class SampleOutcome(StrEnum):
    OK = "ok"  # points written
    FAILED = "failed"  # logged; the next sample covers the interval too


def delta(new: ServiceCounts, old: ServiceCounts | None) -> ServiceCounts:
    """What was counted between two snapshots; the new counts when any went down (the
    gateway restarted and counts from zero again)."""
    if old is None:
        return new
    pairs = [
        (new.requests, old.requests),
        (new.bytes_in, old.bytes_in),
        (new.bytes_out, old.bytes_out),
        *zip(new.by_class, old.by_class, strict=True),
        *zip(new.latency_buckets, old.latency_buckets, strict=True),
    ]
    if any(n < o for n, o in pairs):
        return new
    return ServiceCounts(
        requests=new.requests - old.requests,
        by_class=tuple(n - o for n, o in zip(new.by_class, old.by_class, strict=True)),  # type: ignore[arg-type]
        latency_sum=max(0.0, new.latency_sum - old.latency_sum),
        latency_buckets=tuple(
            n - o for n, o in zip(new.latency_buckets, old.latency_buckets, strict=True)
        ),
        bytes_in=new.bytes_in - old.bytes_in,
        bytes_out=new.bytes_out - old.bytes_out,
    )


def counted(point: MetricPoint, counts: ServiceCounts) -> MetricPoint:
    """`point` with the counts of its interval (and the percentiles they give)."""
    by_class = counts.by_class
    point.requests = counts.requests
    point.ok = by_class[2] + by_class[3]
    point.errors_4xx = by_class[4]
    point.errors_5xx = by_class[5]
    point.cancelled = by_class[0]
    point.latency_sum_ms = counts.latency_sum * 1000.0
    point.latency_buckets = list(counts.latency_buckets)
    point.bytes_in, point.bytes_out = counts.bytes_in, counts.bytes_out
    point.set_percentiles()
    return point


def _sum(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


class MetricsSampler:
    """Samples the gateway and the backend into the store (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        gateway: GatewayView | None,
        backend: Backend,
        state: ControllerState,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.backend = backend
        self.state = state
        self.resolution = finest_resolution(settings.observability)
        self._previous: ServiceSnapshot | None = None
        self._since = 0.0  # wall time of the previous sample (the interval's start)
        self._due = 0.0  # the next sample is due at this wall time
        self._rolled: dict[int, int] = {}  # resolution -> end of the interval last rolled up
        self._quiet: frozenset[str] = frozenset()  # endpoints whose last written point was quiet
        self._caught_up = False  # the rollups a stop left out are written (`_catch_up`)
        self._pruned = -math.inf  # monotonic time of the last prune
        # For /metrics (`control.history_metrics`), read by the server's thread: replaced
        # whole by each written sample (so a deleted endpoint or replica is forgotten),
        # counters only added to by the controller's thread.
        self.latest: Mapping[tuple[str, str], MetricPoint] = {}  # (endpoint, replica "")
        self.samples: dict[SampleOutcome, int] = dict.fromkeys(SampleOutcome, 0)

    async def run(self, endpoints: Sequence[EndpointRecord]) -> bool:
        """A sample if one is due (True when points were written); never raises."""
        now = self.clock.now().timestamp()
        if self._previous is not None and now < self._due:
            return False
        self._due = (math.floor(now / self.resolution) + 1) * self.resolution
        try:
            written = await self._sample(now, endpoints)
        except Exception:  # the history must never stop the controller
            log.exception("metrics sample failed")
            self.samples[SampleOutcome.FAILED] += 1
            return False
        if written:
            self.samples[SampleOutcome.OK] += 1
        return written

    async def _sample(self, now: float, endpoints: Sequence[EndpointRecord]) -> bool:
        snapshot = ServiceSnapshot(taken_at=now)
        if self.gateway is not None:
            snapshot = self.gateway.service_snapshot()
        previous, since = self._previous, self._since
        if previous is None:
            self._previous, self._since = snapshot, now
            return False  # the baseline: differences start from here
        ts = math.floor(since / self.resolution) * self.resolution
        points, quiet = await self._points(ts, endpoints, snapshot, previous)
        still = quiet & self._quiet  # quiet now and at their last written point: no row
        written = [p for p in points if p.endpoint not in still]
        written.append(MetricPoint(SAMPLED, "", self.resolution, ts))
        rolled: dict[int, int] = {}
        with self.db.unit_of_work() as uow:
            uow.metrics.upsert(written)
            if not self._caught_up:
                self._catch_up(uow, now)
            for resolution, finer in ((60, self.resolution), (3600, 60)):
                end = math.floor(now / resolution) * resolution  # what has closed
                if self._rolled.get(resolution) == end or resolution <= finer:
                    continue
                # The interval just closed, and the one holding this point if that closed
                # too (a late sample): earlier ones were rolled up when they closed.
                for start in {end - resolution, math.floor(ts / resolution) * resolution}:
                    if start + resolution <= end:
                        uow.metrics.roll_up(resolution, start, finer)
                rolled[resolution] = end
        # Only once committed: after a failed write the next sample covers both intervals
        # and rolls up again what this one would have.
        self._rolled.update(rolled)
        self._caught_up = True
        self._quiet = quiet
        self._previous, self._since = snapshot, now
        self._remember(points)
        self._prune(now)
        return True

    def _catch_up(self, uow: UnitOfWork, now: float) -> None:
        """On this sampler's first write: roll up the closed minutes and hours of the last
        `CATCH_UP_S` that have finer points but no rollup (the server stopped before their
        end, or before the sample that would have rolled them up), minutes first. The
        endpoint list's day totals read the rollups (`store.stats`)."""
        for resolution, finer in ((60, self.resolution), (3600, 60)):
            if resolution <= finer:
                continue
            closed = math.floor(now / resolution) * resolution
            since = closed - CATCH_UP_S
            for start in uow.metrics.missing_rollups(resolution, finer, since, closed):
                uow.metrics.roll_up(resolution, start, finer)

    def _remember(self, points: Sequence[MetricPoint]) -> None:
        """The sample just written, as the newest figures of each endpoint and replica."""
        self.latest = {(p.endpoint, p.replica): p for p in points}

    def _prune(self, now: float) -> None:
        """Every `prune_every_s`, delete each resolution's points past their age: bounded
        batches (`PRUNE_BATCH` points), each its own short transaction after the sample's,
        at most `PRUNE_BATCHES` per sample. What is left (a first prune after a long
        downtime) goes on at the next sample; a failure is logged and retried then."""
        obs = self.settings.observability
        mono = self.clock.monotonic()
        if mono - self._pruned < obs.prune_every_s:
            return
        batches = 0
        try:
            for resolution, max_age in stored_resolutions(obs).items():
                deleted = PRUNE_BATCH
                while deleted >= PRUNE_BATCH:
                    if batches >= PRUNE_BATCHES:
                        return  # still due: the next sample goes on
                    with self.db.unit_of_work() as uow:
                        deleted = uow.metrics.prune(resolution, now - max_age, batch=PRUNE_BATCH)
                    batches += 1
        except Exception:  # the history must never stop the controller
            log.exception("metrics history: pruning failed; the next sample retries")
            return
        self._pruned = mono  # only once every resolution is pruned

    async def _points(
        self,
        ts: int,
        endpoints: Sequence[EndpointRecord],
        snapshot: ServiceSnapshot,
        previous: ServiceSnapshot,
    ) -> tuple[list[MetricPoint], frozenset[str]]:
        """Every endpoint's and replica's point, and the endpoints that are quiet."""
        live = [r for r in self.state.replicas.values() if r.state in _MEASURED]
        try:
            used = await self.backend.resources([r.replica_id for r in live])
        except Exception:  # no figures this time; counts are still worth a point
            log.exception("replica resources not measured")
            used = {}
        loads: Mapping[str, EndpointLoad] = {}
        if self.gateway is not None:
            loads = self.gateway.load_snapshot()
        points: list[MetricPoint] = []
        quiet: set[str] = set()
        for ep in endpoints:
            if ep.status is EndpointStatus.DELETING:
                continue
            tracked = [r for r in live if r.endpoint == ep.name]
            mine = {r.replica_id for r in tracked}
            for rid, rc in snapshot.replicas.items():  # the last requests of a gone replica
                gone = rc.endpoint == ep.name and rid not in mine
                if gone and delta(rc.counts, _counts(previous, rid)).requests > 0:
                    mine.add(rid)
            replicas = [
                self._replica_point(ep.name, rid, ts, snapshot, previous, used)
                for rid in sorted(mine)
            ]
            point = MetricPoint(ep.name, "", self.resolution, ts)
            counts = snapshot.endpoints.get(ep.name) or ServiceCounts()
            counted(point, delta(counts, previous.endpoints.get(ep.name)))
            load = loads.get(ep.name) or EndpointLoad()
            point.in_flight, point.held = float(load.in_flight), float(load.held)
            point.ready = sum(r.state is ReplicaState.READY for r in tracked)
            point.desired = ep.desired_replicas
            measured = [used[rid] for rid in sorted(mine) if rid in used]
            if measured or not tracked:  # no replica: nothing used (a graph shows 0)
                point.cpu_percent = sum(m.cpu_percent for m in measured)
                point.rss_bytes = sum(m.rss_bytes for m in measured)
            point.gpu_util_percent = _sum([m.gpu_util_percent for m in measured])
            gpu_memory = _sum([m.gpu_memory_bytes for m in measured])
            point.gpu_memory_bytes = None if gpu_memory is None else int(gpu_memory)
            points += [point, *replicas]
            if not replicas and not tracked and _is_quiet(point):
                quiet.add(ep.name)
        return points, frozenset(quiet)

    def _replica_point(
        self,
        endpoint: str,
        replica_id: str,
        ts: int,
        snapshot: ServiceSnapshot,
        previous: ServiceSnapshot,
        used: Mapping[str, ReplicaResources],
    ) -> MetricPoint:
        point = MetricPoint(endpoint, replica_id, self.resolution, ts)
        now = _counts(snapshot, replica_id) or ServiceCounts()
        counted(point, delta(now, _counts(previous, replica_id)))
        if self.gateway is not None:
            point.in_flight = float(self.gateway.outstanding(replica_id))
        measured = used.get(replica_id)
        if measured is not None:
            point.cpu_percent, point.rss_bytes = measured.cpu_percent, measured.rss_bytes
            point.gpu_util_percent = measured.gpu_util_percent
            point.gpu_memory_bytes = measured.gpu_memory_bytes
        return point


def _is_quiet(point: MetricPoint) -> bool:
    """An endpoint point that says only zeros (as `store.metrics.quiet_point`)."""
    return not (
        point.requests
        or point.cancelled
        or point.bytes_in
        or point.bytes_out
        or point.in_flight
        or point.held
        or point.ready
        or point.desired
    )


def _counts(snapshot: ServiceSnapshot, replica_id: str) -> ServiceCounts | None:
    rc = snapshot.replicas.get(replica_id)
    return None if rc is None else rc.counts
