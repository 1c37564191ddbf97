"""Quantiles from bucketed latency counts (the gateway's meters, the metrics history).

`counts[i]` is the number of observations in bucket i: `(bounds[i-1], bounds[i]]`, the last
one above `bounds[-1]` (+Inf). A quantile is interpolated linearly inside its bucket, as
Prometheus' `histogram_quantile` does; one in the +Inf bucket is the highest bound. So a
quantile is exact to within its bucket's width (`core.metric_names.LATENCY_BUCKETS`).
"""

from __future__ import annotations

from collections.abc import Sequence

from podium.core.metric_names import LATENCY_BUCKETS


def quantile(
    counts: Sequence[int], q: float, bounds: Sequence[float] = LATENCY_BUCKETS
) -> float | None:
    """The q-quantile (0 < q < 1) in the unit of `bounds`; None when there is no count."""
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"{len(counts)} counts for {len(bounds)} bounds (+Inf)")
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i == len(bounds):
                return float(bounds[-1])
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return float(bounds[-1])


def add(into: list[int], counts: Sequence[int]) -> None:
    """`into += counts`, bucket by bucket (rolling points up)."""
    for i, count in enumerate(counts):
        into[i] += count
