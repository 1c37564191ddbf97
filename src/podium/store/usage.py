"""Replica time, for usage and cost: one row per replica from its start to its end.

The controller `open`s a row when a replica starts and `close`s it when the replica stops,
exits or is found lost, and closes every open row when it stops (a replica a later server
adopts gets its row opened again: it ran on meanwhile); a row still open counts up to now.
`intervals` returns the rows that overlap [start, end), clipped to it; `totals` adds them
up per (project, endpoint, instance type) or per (project, UTC day, instance type),
splitting an interval at each UTC midnight. A replica sized by `resources` (instance type
`custom`) has its size on its row (`RowSize`), so the report prices it per unit; sizes
are kept apart in the totals. Time with no replica (paused, scaled to zero)
has no row: it costs nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.store.tables import ReplicaUsageRow


class GroupBy(StrEnum):
    ENDPOINT = "endpoint"
    DAY = "day"


@dataclass(frozen=True, slots=True, order=True)
class RowSize:
    """One `custom` replica's size: what its row records for pricing."""

    cpus: float
    memory_mb: int
    gpus: int


@dataclass(frozen=True, slots=True)
class UsageInterval:
    """Part of one replica's life, inside the period asked for."""

    replica_id: str
    project: str
    endpoint: str  # the endpoint's key
    instance_type: str
    start: datetime
    end: datetime
    size: RowSize | None = None  # a `custom` replica's

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass(frozen=True, slots=True)
class UsageTotal:
    project: str
    group: str  # the endpoint's key, or a UTC day "YYYY-MM-DD"
    instance_type: str
    replica_seconds: float
    size: RowSize | None = None  # a `custom` replica's


class UsageRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def open(
        self,
        replica_id: str,
        *,
        endpoint: str,
        project: str,
        instance_type: str,
        size: RowSize | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """A replica started (`size`: a `custom` one's). Again for one that has a row
        (adopted by a new server): the row is kept, and open again if the previous server
        closed it when it stopped; a row without a size (opened before migration 0006)
        gets `size`, so its replica is priced."""
        found = self._s.scalar(
            select(ReplicaUsageRow).where(ReplicaUsageRow.replica_id == replica_id)
        )
        if found is not None:
            if found.ended_at is not None:
                found.ended_at = None
            if found.cpus is None and size is not None:
                found.cpus, found.memory_mb, found.gpus = size.cpus, size.memory_mb, size.gpus
            self._s.flush()
            return
        self._s.add(
            ReplicaUsageRow(
                replica_id=replica_id,
                endpoint=endpoint,
                project=project,
                instance_type=instance_type,
                cpus=None if size is None else size.cpus,
                memory_mb=None if size is None else size.memory_mb,
                gpus=None if size is None else size.gpus,
                started_at=started_at or self._clock.now(),
                ended_at=None,
            )
        )
        self._s.flush()

    def close(self, replica_id: str, at: datetime | None = None) -> bool:
        """The replica ended at `at` (default now); False if no open row names it."""
        result = self._s.execute(
            update(ReplicaUsageRow)
            .where(ReplicaUsageRow.replica_id == replica_id, ReplicaUsageRow.ended_at.is_(None))
            .values(ended_at=at or self._clock.now())
        )
        return bool(getattr(result, "rowcount", 0))

    def close_all_but(self, live: Iterable[str], at: datetime | None = None) -> int:
        """Close every open row whose replica is not in `live` (a server start: rows a
        previous server left open for replicas that no longer run). Returns how many."""
        keep = set(live)
        stmt = select(ReplicaUsageRow.replica_id).where(ReplicaUsageRow.ended_at.is_(None))
        stale = [rid for rid in self._s.scalars(stmt) if rid not in keep]
        when = at or self._clock.now()
        for rid in stale:
            self.close(rid, when)
        return len(stale)

    def open_ids(self) -> builtins.list[str]:
        stmt = select(ReplicaUsageRow.replica_id).where(ReplicaUsageRow.ended_at.is_(None))
        return list(self._s.scalars(stmt))

    def intervals(
        self,
        start: datetime,
        end: datetime,
        *,
        projects: Iterable[str] | None = None,
        endpoint: str | None = None,
    ) -> builtins.list[UsageInterval]:
        """Each row overlapping [start, end), clipped to it (an open row ends now, or at
        `end` if that is earlier). `projects` None: every project."""
        now = self._clock.now()
        stmt = (
            select(ReplicaUsageRow)
            .where(
                ReplicaUsageRow.started_at < end,
                or_(ReplicaUsageRow.ended_at.is_(None), ReplicaUsageRow.ended_at > start),
            )
            .order_by(ReplicaUsageRow.started_at, ReplicaUsageRow.id)
        )
        if projects is not None:
            stmt = stmt.where(ReplicaUsageRow.project.in_(list(projects)))
        if endpoint is not None:
            stmt = stmt.where(ReplicaUsageRow.endpoint == endpoint)
        out: list[UsageInterval] = []
        for row in self._s.scalars(stmt):
            lo = max(row.started_at, start)
            hi = min(row.ended_at or now, end)
            if hi > lo:
                iv = UsageInterval(
                    row.replica_id, row.project, row.endpoint, row.instance_type, lo, hi, _size(row)
                )
                out.append(iv)
        return out


def _size(row: ReplicaUsageRow) -> RowSize | None:
    if row.cpus is None or row.memory_mb is None or row.gpus is None:
        return None
    return RowSize(row.cpus, row.memory_mb, row.gpus)


def totals(intervals: Iterable[UsageInterval], group_by: GroupBy) -> list[UsageTotal]:
    """Replica seconds per (project, endpoint or UTC day, instance type, custom size),
    sorted."""
    sums: dict[tuple[str, str, str, RowSize | None], float] = {}
    for iv in intervals:
        parts = [(iv.endpoint, iv.seconds)] if group_by is GroupBy.ENDPOINT else _by_day(iv)
        for group, seconds in parts:
            key = (iv.project, group, iv.instance_type, iv.size)
            sums[key] = sums.get(key, 0.0) + seconds
    ordered = sorted(sums.items(), key=lambda kv: (kv[0][:3], kv[0][3] or RowSize(0, 0, 0)))
    return [UsageTotal(p, g, t, round(s, 3), size) for (p, g, t, size), s in ordered]


def _by_day(iv: UsageInterval) -> list[tuple[str, float]]:
    """The interval's seconds on each UTC day it touches."""
    out: list[tuple[str, float]] = []
    lo, end = iv.start.astimezone(UTC), iv.end.astimezone(UTC)
    while lo < end:
        midnight = datetime(lo.year, lo.month, lo.day, tzinfo=UTC) + timedelta(days=1)
        hi = min(end, midnight)
        out.append((lo.date().isoformat(), (hi - lo).total_seconds()))
        lo = hi
    return out
