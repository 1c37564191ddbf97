"""A project's quotas and what its endpoints use of them: pure arithmetic, no I/O.

The API refuses a change that would pass a quota (`check`), the autoscaler caps a
scale-up at what still fits (`room`); both count usage the same way (`endpoint_usage`):

- endpoints: every endpoint that is not paused (nor being deleted);
- replicas:  each endpoint's desired count (0 when paused or scaled to zero);
- cpus/gpus: replicas times the instance type's cpus/gpus.

A change is refused only when it raises a figure past its quota: lowering a quota below
what is in use never blocks a scale-down, a pause or an update that does not grow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from podium.core.errors import QuotaExceeded
from podium.core.phases import EndpointStatus

# Endpoints that use nothing: stopped by the user or going away.
UNCOUNTED = frozenset({EndpointStatus.PAUSED, EndpointStatus.DELETING})
QUOTA_NAMES = ("max_endpoints", "max_replicas", "max_cpus", "max_gpus")


@dataclass(frozen=True, slots=True)
class Quotas:
    """A project's limits; None is unlimited."""

    max_endpoints: int | None = None
    max_replicas: int | None = None
    max_cpus: float | None = None
    max_gpus: int | None = None

    def any(self) -> bool:
        return any(getattr(self, q) is not None for q in QUOTA_NAMES)


@dataclass(frozen=True, slots=True)
class Usage:
    endpoints: int = 0
    replicas: int = 0
    cpus: float = 0.0
    gpus: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.endpoints + other.endpoints,
            self.replicas + other.replicas,
            self.cpus + other.cpus,
            self.gpus + other.gpus,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.endpoints - other.endpoints,
            self.replicas - other.replicas,
            self.cpus - other.cpus,
            self.gpus - other.gpus,
        )

    def figure(self, quota: str) -> float:
        """The figure a quota limits: `max_cpus` → cpus."""
        return float(getattr(self, quota.removeprefix("max_")))


def endpoint_usage(status: EndpointStatus, desired: int, cpus: float, gpus: int) -> Usage:
    """What one endpoint uses: `cpus`/`gpus` are its instance type's, per replica."""
    if status in UNCOUNTED:
        return Usage()
    return Usage(1, desired, desired * cpus, desired * gpus)


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


def room(quotas: Quotas, others: Usage, cpus: float, gpus: int) -> tuple[int | None, str | None]:
    """The most replicas one endpoint may have beside `others` (the rest of its project),
    and the quota that bounds it; `(None, None)` when no quota does."""
    best: tuple[int | None, str | None] = (None, None)
    bounds: list[tuple[str, float | None, float]] = [
        ("max_replicas", quotas.max_replicas, 1.0),
        ("max_cpus", quotas.max_cpus, cpus),
        ("max_gpus", quotas.max_gpus, float(gpus)),
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
