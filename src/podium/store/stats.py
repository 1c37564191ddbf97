"""Summaries of the metrics history for the endpoint list and detail, and the live view.

Reads only: the controller's metrics sampler writes `metric_points` (store/metrics.py).
Both methods read the points of the sampled resolution, which the caller passes
(`core.metric_schemas.finest_resolution(settings.observability)`: 10 s by default,
PODIUM_METRICS_INTERVAL_S; the unit of work has no settings). Both answer for many
endpoints in ONE query (a list of 100 endpoints costs one round trip, not 100):

- `traffic` sums the sampled points of the last 24 hours per (endpoint, replica):
  requests over the whole day, and requests, 5xx answers and summed latency over the last
  `RECENT_S` (5 minutes), from which the API derives requests per minute, the average
  latency and the error rate (`Traffic`).
- `latest_gauges` returns the newest recent point's gauges (CPU %, RSS, GPU) per
  (endpoint, replica).

A point at `ts` covers [ts, ts + res). The windows are anchored on CLOSED slots: the
slot holding `now` is not written yet (the sampler writes a point once its interval has
passed), so a window ending at `now` would count one slot short and read 3-7 % low. The
newest closed slot starts at `end = floor(now / res) * res - res`; "the last 5 minutes" are
the `300 / res` slots ending with it (ts in (end - 300, end], exactly 300 s of points) and
requests per minute divides their requests by 300 s; "the day" is ts in
(end - 86400, end]. The newest closed slot itself may still be missing for the moment the
controller's pass lags behind its boundary (it reads low then, by at most that slot).

The day is summed from the sampled points from `cut` on (the start of the minute holding
`end - RECENT_S`), and before it from the hour rollups (resolution 3600) of the whole
hours inside the day and the minute rollups (resolution 60) of the minutes around them:
at most 23 + 119 + 30 rows per series instead of a day of 8,640 sampled points or 1,440
minutes. The endpoint list (polled every 3 s by the dashboard) read 545 ms of server CPU
for 20 endpoints with a full day of 10 s points, and 328 ms for 200 endpoints with a day
of minutes (bench/dashboard.py). The rollups are written by the sampler as each minute
and hour closes, and on a controller's first sample it rolls up what a stop left out
(`MetricRepo.missing_rollups`), so a restart loses no minute or hour of the totals once
sampling resumes; while no controller samples, the hour that was under way when sampling
stopped reads nothing until then (its rollup does not exist yet). The minute and hour
points must be kept for a day at least (the defaults: 7 and 90 days).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from podium.core.access import DEFAULT_PROJECT, PROJECT_SEPARATOR, endpoint_key, split_key
from podium.core.clock import Clock
from podium.store.tables import MetricPointRow

DAY_S = 86_400
ROLLUP_S = 60  # the sampler's minute rollups (control/metrics_history.py)
HOUR_S = 3600  # and its hour rollups
RECENT_S = 300  # requests per minute, average latency and error rate are over this window
ENDPOINT = ""  # the `replica` of an endpoint's own points

_IN_LIST_MAX = 64  # endpoint keys named in one query; more: by project (`_of_endpoints`)
_PROJECTS_MAX = 16  # projects named in one query; more: every endpoint's points

Key = tuple[str, str]  # (endpoint key, replica id or "" for the endpoint itself)


@dataclass(frozen=True, slots=True)
class Traffic:
    """What one endpoint or replica served: `requests` in the last day; `recent_*` in the
    `RECENT_S` seconds of closed slots before now (latency in milliseconds, summed)."""

    requests: int = 0
    recent_requests: int = 0
    recent_5xx: int = 0
    recent_latency_ms: float = 0.0

    @property
    def requests_per_min(self) -> float:
        """The recent requests over the window's 300 s (it holds exactly that much)."""
        return self.recent_requests * 60.0 / RECENT_S

    @property
    def avg_latency_ms(self) -> float | None:
        """The mean over the recent window; None when it served nothing."""
        if self.recent_requests <= 0:
            return None
        return self.recent_latency_ms / self.recent_requests

    @property
    def error_rate(self) -> float | None:
        """5xx answers / requests over the recent window (0..1); None with no request."""
        if self.recent_requests <= 0:
            return None
        return self.recent_5xx / self.recent_requests


@dataclass(frozen=True, slots=True)
class Gauges:
    """The newest point's resource figures (None: not measured, e.g. no GPU)."""

    ts: int
    cpu_percent: float | None
    rss_bytes: int | None
    gpu_util_percent: float | None
    gpu_memory_bytes: int | None


def closed_slot(now: float, resolution: int) -> int:
    """The start of the newest slot of `resolution` seconds that has ended by `now`."""
    return math.floor(now / resolution) * resolution - resolution


def _of_endpoints(column: Any, keys: Collection[str]) -> Any:
    """The SQL filter for the points of endpoints `keys`: their names (`IN`) for a few;
    for more (the list of every endpoint: 1,000 names to bind, render and parse on each
    call were a sixth of it), the points of their projects (a key's project is its prefix,
    `core.access.endpoint_key`), or of every endpoint past `_PROJECTS_MAX` projects; the
    caller drops the keys it did not ask for. The day's points are found by
    `ix_metric_points_resolution_ts` either way."""
    if len(keys) <= _IN_LIST_MAX:
        return column.in_(sorted(keys))
    projects = sorted({split_key(k)[0] for k in keys})
    if len(projects) > _PROJECTS_MAX:
        return true()
    return or_(*(_of_project(column, project) for project in projects))


def _of_project(column: Any, project: str) -> Any:
    if project == DEFAULT_PROJECT:  # keys without a project prefix
        return ~column.contains(PROJECT_SEPARATOR, autoescape=True)
    return column.startswith(endpoint_key(project, ""), autoescape=True)


def _day_rows(resolution: int, end: int) -> Any:
    """The points whose sum is the day (end - DAY_S, end] (module docstring): the sampled
    ones from `cut` on, whole hours from their hour rollups, the minutes around them from
    their minute rollups."""
    p = MetricPointRow
    first = end - DAY_S  # exclusive
    # The sampled points from `cut` on (minutes, when 60 s is the sampled resolution). An
    # hour is read from its rollup only once it closed `RECENT_S` ago at least: the rollup
    # is written by the sample that crosses the hour, which may lag a little.
    cut = math.floor((end - RECENT_S) / ROLLUP_S) * ROLLUP_S
    parts = [and_(p.resolution == resolution, p.ts >= cut, p.ts <= end)]
    h0 = (first // HOUR_S + 1) * HOUR_S  # the first hour that starts inside the day
    h1 = (cut // HOUR_S) * HOUR_S  # the end of the last hour that ends before `cut`
    if h1 > h0:
        parts += [
            and_(p.resolution == ROLLUP_S, p.ts > first, p.ts < h0),
            and_(p.resolution == HOUR_S, p.ts >= h0, p.ts < h1),
            and_(p.resolution == ROLLUP_S, p.ts >= h1, p.ts < cut),
        ]
    else:
        parts.append(and_(p.resolution == ROLLUP_S, p.ts > first, p.ts < cut))
    return or_(*parts)


class StatsRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def now(self) -> float:
        """Unix seconds by the store's clock (what the windows and uptimes are measured to)."""
        return self._clock.now().timestamp()

    def traffic(
        self,
        endpoints: Collection[str],
        replicas: Collection[str] | None = None,
        *,
        resolution: int,
        now: float | None = None,
    ) -> dict[Key, Traffic]:
        """Per (endpoint key, replica) of these endpoints, in one query: their own points
        (replica "") and those of the replicas named in `replicas` (None: every replica
        with points, retired ones too), at the sampled `resolution` (seconds; it divides
        60). Keys without a point in the day are absent."""
        keys = set(endpoints)
        if not keys:
            return {}
        end = closed_slot(self.now() if now is None else now, resolution)
        p = MetricPointRow
        recent = p.ts > end - RECENT_S
        rows = _day_rows(resolution, end)

        def recent_sum(column: Any) -> Any:
            return func.coalesce(func.sum(case((recent, column), else_=0)), 0)

        stmt = (
            select(
                p.endpoint,
                p.replica,
                func.coalesce(func.sum(p.requests), 0),
                recent_sum(p.requests),
                recent_sum(p.errors_5xx),
                recent_sum(p.latency_sum_ms),
            )
            .where(_of_endpoints(p.endpoint, keys), rows)
            .group_by(p.endpoint, p.replica)
        )
        if replicas is not None:
            wanted = sorted(set(replicas) | {ENDPOINT})
            stmt = stmt.where(p.replica.in_(wanted))
        out: dict[Key, Traffic] = {}
        for endpoint, replica, day, requests, errors, latency in self._s.execute(stmt):
            if endpoint not in keys:  # of the same projects, not asked for (`_of_endpoints`)
                continue
            out[(endpoint, replica)] = Traffic(
                requests=int(day),
                recent_requests=int(requests),
                recent_5xx=int(errors),
                recent_latency_ms=float(latency),
            )
        return out

    def latest_gauges(
        self,
        endpoints: Collection[str],
        *,
        resolution: int,
        max_age_s: float,
        now: float | None = None,
    ) -> dict[Key, Gauges]:
        """The gauges of the newest point at the sampled `resolution` per (endpoint key,
        replica), of points at most `max_age_s` old (an older one is not "now": absent).
        One query."""
        if not endpoints:
            return {}
        at = self.now() if now is None else now
        p = MetricPointRow
        keys = sorted(set(endpoints))
        newest = (
            select(p.endpoint, p.replica, func.max(p.ts).label("ts"))
            .where(
                p.endpoint.in_(keys),
                p.resolution == resolution,
                p.ts >= at - max_age_s,
            )
            .group_by(p.endpoint, p.replica)
            .subquery()
        )
        stmt = select(
            p.endpoint,
            p.replica,
            p.ts,
            p.cpu_percent,
            p.rss_bytes,
            p.gpu_util_percent,
            p.gpu_memory_bytes,
        ).join(
            newest,
            and_(
                p.endpoint == newest.c.endpoint,
                p.replica == newest.c.replica,
                p.resolution == resolution,
                p.ts == newest.c.ts,
            ),
        )
        return {
            (endpoint, replica): Gauges(ts, cpu, rss, gpu, gpu_memory)
            for endpoint, replica, ts, cpu, rss, gpu, gpu_memory in self._s.execute(stmt)
        }
