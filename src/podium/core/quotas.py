"""A project's quotas and what its endpoints use of them: pure arithmetic, no I/O.

The API refuses a change that would pass a quota (`check`), the autoscaler caps a
scale-up at what still fits (`room`); both count usage the same way, here and only here
(`endpoint_usage`):

- paused, being deleted, or scaled to zero (desired count 0, whatever the status says):
  nothing at all (no endpoint, no replica);
- failed: one endpoint, no replicas (nothing runs, but waking it takes an update);
- otherwise: one endpoint and its desired count of replicas (an endpoint woken from zero,
  desired > 0 while its status still reads scaled_to_zero, counts in full);
- cpus/gpus/memory_mb: replicas times one replica's size (`Settings.replica_size`: its
  instance type, or its `resources`). Memory has its own quota: with `resources`, CPUs no
  longer bound memory the way a named type's fixed CPU-to-memory ratio does.

So waking an endpoint from zero (API wake or resume, the autoscaler's wake) adds an
endpoint and is checked against max_endpoints as well.

A change is refused only when it raises a figure past its quota: lowering a quota below
what is in use never blocks a scale-down, a pause or an update that does not grow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from podium.core.errors import QuotaExceeded
from podium.core.phases import EndpointStatus

# Endpoints that use nothing whatever their desired count: stopped by the user or going away.
UNCOUNTED = frozenset({EndpointStatus.PAUSED, EndpointStatus.DELETING})
# Endpoints that count as endpoints but run no replicas.
NOT_RUNNING = frozenset({EndpointStatus.FAILED})
QUOTA_NAMES = ("max_endpoints", "max_replicas", "max_cpus", "max_gpus", "max_memory_mb")


@dataclass(frozen=True, slots=True)
class Quotas:
    """A project's limits; None is unlimited."""

    max_endpoints: int | None = None
    max_replicas: int | None = None
    max_cpus: float | None = None
    max_gpus: int | None = None
    max_memory_mb: int | None = None

    def any(self) -> bool:
        return any(getattr(self, q) is not None for q in QUOTA_NAMES)


@dataclass(frozen=True, slots=True)
class Usage:
    endpoints: int = 0
    replicas: int = 0
    cpus: float = 0.0
    gpus: int = 0
    memory_mb: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.endpoints + other.endpoints,
            self.replicas + other.replicas,
            self.cpus + other.cpus,
            self.gpus + other.gpus,
            self.memory_mb + other.memory_mb,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.endpoints - other.endpoints,
            self.replicas - other.replicas,
            self.cpus - other.cpus,
            self.gpus - other.gpus,
            self.memory_mb - other.memory_mb,
        )

    def figure(self, quota: str) -> float:
        """The figure a quota limits: `max_cpus` → cpus."""
        return float(getattr(self, quota.removeprefix("max_")))


def endpoint_usage(
    status: EndpointStatus, desired: int, cpus: float, gpus: int, memory_mb: int = 0
) -> Usage:
    """What one endpoint uses (the rules in the module doc): `cpus`/`gpus`/`memory_mb` are
    one replica's."""
    if status in UNCOUNTED or desired <= 0:  # scaled to zero: SCALED_TO_ZERO has desired 0
        return Usage()
    if status in NOT_RUNNING:
        return Usage(endpoints=1)
    return Usage(1, desired, desired * cpus, desired * gpus, desired * memory_mb)


def total(usages: Iterable[Usage]) -> Usage:
    out = Usage()
    for u in usages:
        out += u
    return out


def _show(value: float) -> str:
    return f"{value:g}"


def check(project: str, quotas: Quotas, now: Usage, after: Usage) -> None:
    """QuotaExceeded (field = the quota) when `after` passes a quota that `now` does not
    already pass at least as far."""
    for quota in QUOTA_NAMES:
        limit = getattr(quotas, quota)
        if limit is None:
            continue
        new, old = after.figure(quota), now.figure(quota)
        if new > limit + 1e-9 and new > old:
            raise QuotaExceeded(
                f"project {project!r} allows {quota}={_show(limit)}; this would make {_show(new)}",
                field=quota,
            )


def room(
    quotas: Quotas,
    others: Usage,
    cpus: float,
    gpus: int,
    memory_mb: int = 0,
    *,
    from_zero: bool = False,
) -> tuple[int | None, str | None]:
    """The most replicas one endpoint may have beside `others` (the rest of its project),
    and the quota that bounds it; `(None, None)` when no quota does. `from_zero`: the
    endpoint has desired 0 now, so any replica also makes it count against max_endpoints
    (no room at all, bounded by max_endpoints, when the others already fill it)."""
    if (
        from_zero
        and quotas.max_endpoints is not None
        and others.endpoints + 1 > quotas.max_endpoints
    ):
        return (0, "max_endpoints")
    best: tuple[int | None, str | None] = (None, None)
    bounds: list[tuple[str, float | None, float]] = [
        ("max_replicas", quotas.max_replicas, 1.0),
        ("max_cpus", quotas.max_cpus, cpus),
        ("max_gpus", quotas.max_gpus, float(gpus)),
        ("max_memory_mb", quotas.max_memory_mb, float(memory_mb)),
    ]
    for quota, limit, per in bounds:
        if limit is None or per <= 0:
            continue
        n = max(0, math.floor((limit - others.figure(quota)) / per + 1e-9))
        if best[0] is None or n < best[0]:
            best = (n, quota)
    return best


def describe(quotas: Quotas) -> dict[str, float | None]:
    return {q: getattr(quotas, q) for q in QUOTA_NAMES}
