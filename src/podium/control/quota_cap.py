"""The autoscaler never scales an endpoint past its project's quotas: pure, no I/O.

`cap` takes the policy's decision and the room the project leaves the endpoint
(`core.quotas.room`) and returns what to do: the decision as it is (it fits, or does not
scale up), a smaller scale-up whose reason names the quota, or a refusal to scale up at
all (`Capped.held`: nothing to write but an event saying why, e.g. a wake from zero that
cannot fit, replicas or max_endpoints, since an endpoint at zero uses no quota; the held
requests then time out as usual).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from podium.control.scale_policy import Decision
from podium.core.quotas import Quotas, Usage, room


@dataclass(frozen=True, slots=True)
class Capped:
    decision: Decision  # what to write (its `desired` may be the current count)
    quota: str | None = None  # the quota that capped it, None when it fits
    held: bool = False  # capped at the current count: no change, only an event

    @property
    def note(self) -> tuple[int, str] | None:
        """What a repeated event would say again: (count, quota)."""
        return None if self.quota is None else (self.decision.desired, self.quota)


def cap(
    decision: Decision,
    current: int,
    quotas: Quotas | None,
    others: Usage,
    cpus: float,
    gpus: int,
    memory_mb: int = 0,
) -> Capped:
    """`decision` capped by `quotas`, given what the rest of the project uses (`others`)
    and one replica's size (`cpus`, `gpus`, `memory_mb`: `Settings.replica_size`). A quota
    already passed never scales an endpoint down: it only stops it from growing."""
    want = decision.desired
    if quotas is None or not decision.changed or want <= current:
        return Capped(decision)
    most, quota = room(quotas, others, cpus, gpus, memory_mb, from_zero=current == 0)
    if most is None or quota is None or want <= most:
        return Capped(decision)
    limit = getattr(quotas, quota)
    n = max(current, most)
    data = {**decision.data, "to": n, "wanted": want, "capped_by": quota, "quota": limit}
    why = f"capped by project quota {quota}={limit:g}"
    if n == current:
        reason = f"not scaled {current}→{want}: {why}"
        state = replace(decision.state, known_desired=current)
        return Capped(Decision(current, state, reason, data), quota, held=True)
    policy_why = (decision.reason or "").partition(": ")[2]
    reason = f"scaled {current}→{n} (wanted {want}: {policy_why}): {why}"
    state = replace(decision.state, known_desired=n)
    return Capped(Decision(n, state, reason, data), quota)
