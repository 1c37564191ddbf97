"""Reading the metrics history for `GET /endpoints/{name}/metrics`: the query's checks
(series, range, step) and the aligned arrays built from the stored points."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from podium.core.errors import Invalid, NotFound
from podium.core.metric_schemas import (
    ENDPOINT_ONLY,
    GPU_SERIES,
    MAX_RANGE_S,
    MAX_STEPS,
    SCALING_EVENTS,
    SERIES,
    MetricEvent,
    MetricHistory,
)
from podium.store.db import UnitOfWork
from podium.store.metrics import MAX_POINTS, MetricPoint, quiet_point

DEFAULT_RANGE_S = 3600.0  # without `from`: the last hour
MAX_EVENTS = 500

_Value = Callable[[MetricPoint, int], float | None]


def _per_request(total: Callable[[MetricPoint], float]) -> _Value:
    return lambda p, step: total(p) / p.requests if p.requests else None


_VALUES: dict[str, _Value] = {
    "rpm": lambda p, step: p.requests * 60.0 / step,
    "error_rate": _per_request(lambda p: p.errors_5xx),
    "latency_avg_ms": _per_request(lambda p: p.latency_sum_ms),
    "scale": lambda p, step: p.desired,
}


def parse_series(value: str | None) -> list[str] | None:
    """The series asked for, in order, once each; None: every series."""
    if value is None:
        return None
    names = list(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    unknown = [n for n in names if n not in SERIES]
    if unknown or not names:
        raise Invalid(
            f"unknown series {', '.join(unknown) or '(none given)'}; known: {', '.join(SERIES)}",
            field="series",
        )
    return names


def pick_step(
    step: str | None, since: float, until: float, now: float, kept: Mapping[int, float]
) -> int:
    """The resolution to read: the one asked for, or (`auto`) the finest that gives at most
    about `MAX_STEPS` steps and still holds points as old as `since`."""
    if step is None or step == "auto":
        for resolution, max_age in kept.items():
            if (until - since) / resolution <= MAX_STEPS and since >= now - max_age:
                return resolution
        return max(kept)
    if not step.isdigit() or int(step) not in kept:
        choices = ", ".join(str(r) for r in kept)
        raise Invalid(f"step must be auto or one of {choices}, not {step!r}", field="step")
    return int(step)


def time_range(since: float | None, until: float | None, now: float) -> tuple[float, float]:
    end = now if until is None else until
    start = end - DEFAULT_RANGE_S if since is None else since
    if start > end:
        raise Invalid("from must not be after to", field="from")
    if end - start > MAX_RANGE_S:
        raise Invalid(f"the range is longer than {MAX_RANGE_S} s", field="from")
    return start, end


def history(
    uow: UnitOfWork,
    key: str,
    *,
    replica: str | None,
    series: Sequence[str] | None,
    since: float,
    until: float,
    step: int,
) -> MetricHistory:
    """The aligned arrays of `key` (or one of its replicas) over [since, until)."""
    record = uow.endpoints.get(key)  # 404 for an unknown endpoint
    if replica is not None and not (
        uow.metrics.has_series(key, replica) or replica in _running(uow, key)
    ):
        raise NotFound(f"replica {replica!r} of endpoint {key!r} not found", field="replica")
    start = math.floor(since / step) * step
    end = max(start + step, math.ceil(until / step) * step)
    steps = (end - start) // step
    if steps > MAX_POINTS:
        raise Invalid(
            f"{steps} steps of {step} s asked for; at most {MAX_POINTS}: "
            "use a coarser step or a shorter range",
            field="step",
        )
    points = uow.metrics.points(key, step, start, end, replica=replica or "", limit=steps)
    at = {p.ts: p for p in points}
    timestamps = list(range(start, end, step))
    if replica is None:  # the slots the endpoint was quiet in (`store.metrics`): zeros
        born = math.floor(record.created_at.timestamp() / step) * step
        for ts in uow.metrics.sampled(step, max(start, born), end) - at.keys():
            at[ts] = quiet_point(key, step, ts)
    names = list(series) if series is not None else list(SERIES)
    out: dict[str, list[float | None]] = {}
    for name in names:
        values = [_value(at.get(ts), name, step, replica) for ts in timestamps]
        if series is None and name in GPU_SERIES and all(v is None for v in values):
            continue  # no GPU: the series is absent unless asked for
        out[name] = values
    events = uow.events.between(
        key,
        SCALING_EVENTS,
        datetime.fromtimestamp(start, UTC),
        datetime.fromtimestamp(end, UTC),
        limit=MAX_EVENTS,
    )
    return MetricHistory(
        step=step,
        from_=start,
        to=end,
        replica=replica,
        timestamps=timestamps,
        series=out,
        events=[MetricEvent(ts=e.at.timestamp(), kind=e.kind, message=e.message) for e in events],
    )


def _running(uow: UnitOfWork, key: str) -> set[str]:
    return {r.replica_id for r in uow.replicas.list(endpoint=key)}


def _value(point: MetricPoint | None, name: str, step: int, replica: str | None) -> float | None:
    if point is None or (replica is not None and name in ENDPOINT_ONLY):
        return None
    compute = _VALUES.get(name)
    if compute is not None:
        return compute(point, step)
    value: float | None = getattr(point, name)
    return value
