"""Token buckets: per API token and per endpoint, checked by the access stage.

A bucket holds up to `burst` units and refills at `rps` units a second; a request takes
one unit, or is refused with how long until one is there. Only the level and the time of
the last refill are kept per key; the limit itself is read from the principal or the
route at each request, so a changed limit applies at once. Everything runs on the
gateway's event loop (no lock).
"""

from __future__ import annotations

import math

from podium.core.access import RateLimit

# Keys kept at most (tokens and endpoints come and go: revoked tokens, deleted endpoints).
# Past it the full buckets (idle long enough to have refilled) are forgotten.
MAX_BUCKETS = 10_000


class Buckets:
    """Token buckets by key (a token id or an endpoint key)."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: dict[str, list[float]] = {}  # key -> [units, monotonic time]

    def wait(self, key: str, limit: RateLimit, now: float) -> float:
        """Seconds until `key` has a unit under `limit` (0.0: it has one now). Refills, does
        not take."""
        level = self._levels.get(key)
        if level is None:
            if len(self._levels) >= MAX_BUCKETS:
                self._forget_full(now)
            level = self._levels[key] = [float(limit.burst), now]
        else:
            units = level[0] + (now - level[1]) * limit.rps
            level[0] = min(float(limit.burst), units)
            level[1] = now
        if level[0] >= 1.0:
            return 0.0
        return (1.0 - level[0]) / limit.rps if limit.rps > 0 else math.inf

    def take(self, key: str) -> None:
        """Take one unit (after `wait` said 0.0 for `key`)."""
        self._levels[key][0] -= 1.0

    def __len__(self) -> int:
        return len(self._levels)

    def _forget_full(self, now: float) -> None:
        # A bucket idle for a minute has refilled at any rate limit worth having.
        self._levels = {k: v for k, v in self._levels.items() if now - v[1] < 60.0}


def retry_after(seconds: float) -> int:
    """`Retry-After` in whole seconds, at least 1."""
    if math.isinf(seconds):
        return 3600
    return max(1, math.ceil(seconds))
