"""The metrics history: points per endpoint (replica "") and per replica at 10 s, 1 min
and 1 h (`tables.MetricPointRow`), written by the controller's sampler
(`control.metrics_history`), read by the API and the statistics.

A coarser point is rolled up from the finer ones of its interval (`combine`): counts and
latency buckets add up, percentiles are recomputed from the summed buckets (so they are
exact to the bucket, like the 10 s ones), CPU, in flight, held and GPU are the mean of the
points, RSS the largest, ready and desired replicas the last. Each resolution is pruned by
age on its own (`prune`), a bounded batch per call.

Quiet slots: the sampler writes no point for an endpoint that is quiet (no replica, nothing
desired, served or held) and was quiet at its last written point already, so 1,000 idle
endpoints cost no rows. It writes instead one point per sample of its own series,
`SAMPLED` (endpoint "", every figure zero), at every resolution like the others. A slot
with a `SAMPLED` point and none of an endpoint is a quiet slot of that endpoint (zero
requests, no replica, nothing in flight: `quiet_point`); a slot without it is a gap (the
sampler did not run: no data). A rollup counts an endpoint's quiet slots as zeros in its
means (the `SAMPLED` points of the interval say how many slots were sampled).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Insert, Table, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from podium.core import histogram
from podium.core.service_counts import N_BUCKETS
from podium.store.tables import MetricPointRow

MAX_POINTS = 10_000  # one read (the API asks for ~1000)
PRUNE_BATCH = 5000  # points one `prune` call deletes at most

_KEY = ("endpoint", "replica", "resolution", "ts")
# The sampler's own series (module docstring): no endpoint key is empty.
SAMPLED = ""


@dataclass(slots=True)
class MetricPoint:
    """One point (see `tables.MetricPointRow` for the meaning of each field)."""

    endpoint: str
    replica: str  # "" = the endpoint itself
    resolution: int
    ts: int
    requests: int = 0
    ok: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    cancelled: int = 0
    latency_sum_ms: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    in_flight: float = 0.0
    held: float = 0.0
    ready: int | None = None
    desired: int | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    gpu_util_percent: float | None = None
    gpu_memory_bytes: int | None = None

    def set_percentiles(self) -> None:
        """p50/p95/p99 from the point's latency buckets (`core.histogram`, in ms)."""
        self.p50_ms, self.p95_ms, self.p99_ms = (
            _ms(histogram.quantile(self.latency_buckets, q)) for q in (0.5, 0.95, 0.99)
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def quiet_point(endpoint: str, resolution: int, ts: int) -> MetricPoint:
    """What the sampler would have written for a quiet endpoint (module docstring)."""
    return MetricPoint(
        endpoint, "", resolution, ts, ready=0, desired=0, cpu_percent=0.0, rss_bytes=0
    )


def combine(
    points: Sequence[MetricPoint], resolution: int, ts: int, *, quiet: int = 0
) -> MetricPoint:
    """The point at `resolution` starting at `ts` rolled up from finer `points` of one
    series (see the module docstring for the rules); `quiet`: how many finer slots of the
    interval the series was quiet in (no point written: zeros in the means)."""
    first = points[0]
    out = MetricPoint(first.endpoint, first.replica, resolution, ts)
    for p in points:
        out.requests += p.requests
        out.ok += p.ok
        out.errors_4xx += p.errors_4xx
        out.errors_5xx += p.errors_5xx
        out.cancelled += p.cancelled
        out.latency_sum_ms += p.latency_sum_ms
        out.bytes_in += p.bytes_in
        out.bytes_out += p.bytes_out
        histogram.add(out.latency_buckets, p.latency_buckets)
    out.set_percentiles()
    zeros: list[float | None] = [0.0] * quiet
    out.in_flight = _mean([p.in_flight for p in points] + zeros) or 0.0
    out.held = _mean([p.held for p in points] + zeros) or 0.0
    out.cpu_percent = _mean([p.cpu_percent for p in points] + zeros)
    out.gpu_util_percent = _mean([p.gpu_util_percent for p in points])
    gpu_memory = _mean([p.gpu_memory_bytes for p in points])
    out.gpu_memory_bytes = None if gpu_memory is None else round(gpu_memory)
    rss = [p.rss_bytes for p in points if p.rss_bytes is not None]
    out.rss_bytes = max(rss) if rss else None
    last = max(points, key=lambda p: p.ts)
    out.ready, out.desired = last.ready, last.desired
    return out


def _point(row: MetricPointRow) -> MetricPoint:
    values = {k: getattr(row, k) for k in MetricPoint.__dataclass_fields__}
    values["latency_buckets"] = list(values["latency_buckets"])
    return MetricPoint(**values)


class MetricRepo:
    def __init__(self, session: Session) -> None:
        self._s = session

    def upsert(self, points: Iterable[MetricPoint]) -> int:
        """Write the points, replacing a point of the same series, resolution and start (a
        point given twice: the later one). One statement for all of them (batched into
        multi-row INSERTs by the driver): a sample writes a point per endpoint, and one
        statement per point cost the controller ~70 % of its idle CPU at 1,000 endpoints."""
        names = list(MetricPoint.__dataclass_fields__)
        rows: dict[tuple[object, ...], dict[str, object]] = {}
        for point in points:  # shallow (asdict copies deeply: a third of the write's CPU)
            values = {k: getattr(point, k) for k in names}
            rows[tuple(values[k] for k in _KEY)] = values
        if not rows:
            return 0
        table = cast(Table, MetricPointRow.__table__)  # Core: executemany, no ORM objects
        fields = [k for k in names if k not in _KEY]
        stmt: Insert
        if self._s.get_bind().dialect.name == "postgresql":
            pg = postgresql.insert(table)
            changes = {k: pg.excluded[k] for k in fields}
            stmt = pg.on_conflict_do_update(index_elements=list(_KEY), set_=changes)
        else:
            lite = sqlite.insert(table)
            changes = {k: lite.excluded[k] for k in fields}
            stmt = lite.on_conflict_do_update(index_elements=list(_KEY), set_=changes)
        self._s.execute(stmt, list(rows.values()))
        return len(rows)

    def points(
        self,
        endpoint: str,
        resolution: int,
        since: int,
        until: int,
        *,
        replica: str = "",
        limit: int = MAX_POINTS,
    ) -> builtins.list[MetricPoint]:
        """One series' points with `since` <= ts < `until`, oldest first (at most `limit`)."""
        stmt = (
            select(MetricPointRow)
            .where(
                MetricPointRow.endpoint == endpoint,
                MetricPointRow.replica == replica,
                MetricPointRow.resolution == resolution,
                MetricPointRow.ts >= since,
                MetricPointRow.ts < until,
            )
            .order_by(MetricPointRow.ts)
            .limit(limit)
        )
        return [_point(r) for r in self._s.scalars(stmt)]

    def has_series(self, endpoint: str, replica: str) -> bool:
        """Any point of this replica of `endpoint` is stored (at any resolution)."""
        stmt = (
            select(MetricPointRow.ts)
            .where(MetricPointRow.endpoint == endpoint, MetricPointRow.replica == replica)
            .limit(1)
        )
        return self._s.scalars(stmt).first() is not None

    def roll_up(self, resolution: int, ts: int, finer: int) -> int:
        """Write the points at `resolution` starting at `ts` from the points at the `finer`
        resolution in [ts, ts + resolution), one per series that has any; returns how many."""
        stmt = (
            select(MetricPointRow)
            .where(
                MetricPointRow.resolution == finer,
                MetricPointRow.ts >= ts,
                MetricPointRow.ts < ts + resolution,
            )
            .order_by(MetricPointRow.endpoint, MetricPointRow.replica, MetricPointRow.ts)
        )
        series: dict[tuple[str, str], list[MetricPoint]] = {}
        for row in self._s.scalars(stmt):
            series.setdefault((row.endpoint, row.replica), []).append(_point(row))
        sampled = len(series.get((SAMPLED, ""), ()))  # slots the sampler covered

        def quiet(key: tuple[str, str], pts: Sequence[MetricPoint]) -> int:
            # only an endpoint is quiet between points: a replica did not exist
            return max(0, sampled - len(pts)) if key[1] == "" and key[0] != SAMPLED else 0

        return self.upsert(
            combine(pts, resolution, ts, quiet=quiet(key, pts)) for key, pts in series.items()
        )

    def missing_rollups(self, resolution: int, finer: int, since: int, until: int) -> list[int]:
        """The starts of the intervals at `resolution` in [since, until) that hold points at
        the `finer` resolution but none at `resolution`: the sampler did not roll them up
        (the server stopped first). A rollup writes every series of its interval at once,
        so one coarse point means the interval was rolled up; and rollups are written in
        the order of time, so only the intervals after the newest one can be missing:
        `since` is moved up to it (one index probe), and the scan reads only the finer
        points after it."""
        p = MetricPointRow
        newest = self._s.scalar(select(func.max(p.ts)).where(p.resolution == resolution))
        if newest is not None:
            since = max(since, int(newest) + resolution)

        def starts(res: int) -> set[int]:
            stmt = select(p.ts).where(p.resolution == res, p.ts >= since, p.ts < until)
            return set(self._s.scalars(stmt.distinct()))

        fine = {ts // resolution * resolution for ts in starts(finer)}
        return sorted(fine - starts(resolution))

    def sampled(self, resolution: int, since: int, until: int) -> set[int]:
        """The starts of the slots at `resolution` in [since, until) the sampler covered
        (its `SAMPLED` points)."""
        p = MetricPointRow
        stmt = select(p.ts).where(
            p.endpoint == SAMPLED,
            p.replica == "",
            p.resolution == resolution,
            p.ts >= since,
            p.ts < until,
        )
        return set(self._s.scalars(stmt))

    def prune(self, resolution: int, before: float, *, batch: int = PRUNE_BATCH) -> int:
        """Delete at most `batch` of the points at `resolution` that started before
        `before` (unix s), oldest first; returns how many (less than `batch`: none is
        left). One bounded statement: the caller commits each batch on its own, so a first
        prune after a long downtime never holds SQLite's write lock for long."""
        p = MetricPointRow
        chosen = (
            select(p.endpoint, p.replica, p.resolution, p.ts)
            .where(p.resolution == resolution, p.ts < before)
            .order_by(p.ts)
            .limit(batch)
        )
        # A row-value IN: the table's key is (endpoint, replica, resolution, ts), and
        # neither SQLite nor PostgreSQL has DELETE … LIMIT in common.
        key = tuple_(p.endpoint, p.replica, p.resolution, p.ts)
        result = self._s.execute(delete(p).where(key.in_(chosen)))
        return int(getattr(result, "rowcount", 0) or 0)
