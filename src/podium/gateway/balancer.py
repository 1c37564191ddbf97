"""Replica choice: power of two random choices on outstanding requests.

The balancer owns the per-replica outstanding counts of this gateway (what
`GatewayView.outstanding` reports) and the ejection list: a replica whose
connection failed is skipped for `eject_s` seconds, unless every candidate is ejected.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence

from podium.core.routing import ReplicaRoute


class Balancer:
    def __init__(
        self,
        eject_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._eject_s = eject_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._outstanding: dict[str, int] = {}
        self._ejected: dict[str, float] = {}  # replica id -> monotonic time it returns

    # -- counts ---------------------------------------------------------------------------

    def outstanding(self, replica_id: str) -> int:
        return self._outstanding.get(replica_id, 0)

    def outstanding_all(self) -> Mapping[str, int]:
        return dict(self._outstanding)

    def acquire(self, replica_id: str) -> None:
        counts = self._outstanding
        counts[replica_id] = counts.get(replica_id, 0) + 1

    def release(self, replica_id: str) -> None:
        counts = self._outstanding
        left = counts[replica_id] - 1
        if left:
            counts[replica_id] = left
        else:
            del counts[replica_id]

    # -- ejection -------------------------------------------------------------------------

    def eject(self, replica_id: str) -> None:
        self._ejected[replica_id] = self._clock() + self._eject_s

    def is_ejected(self, replica_id: str) -> bool:
        until = self._ejected.get(replica_id)
        if until is None:
            return False
        if self._clock() >= until:
            del self._ejected[replica_id]
            return False
        return True

    # -- choice ---------------------------------------------------------------------------

    def pick(
        self, replicas: Sequence[ReplicaRoute], exclude: Collection[str] = ()
    ) -> ReplicaRoute | None:
        """The replica for the next request, or None when every replica is excluded."""
        if len(replicas) == 1 and not exclude:
            return replicas[0]  # ejected or not: it is the only one
        candidates = [r for r in replicas if r.replica_id not in exclude] if exclude else replicas
        if self._ejected:
            healthy = [r for r in candidates if not self.is_ejected(r.replica_id)]
            if healthy:
                candidates = healthy
        n = len(candidates)
        if n <= 1:
            return candidates[0] if n else None
        i = self._rng.randrange(n)
        j = self._rng.randrange(n - 1)
        if j >= i:
            j += 1
        a, b = candidates[i], candidates[j]
        # Ties go to `a`, itself a uniformly random choice.
        return b if self.outstanding(b.replica_id) < self.outstanding(a.replica_id) else a
