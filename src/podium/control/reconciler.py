"""Pure diff: one endpoint's desired state and observed replicas -> a plan of actions.

No I/O and no clock reads: `now` is passed in, so every scenario is a plain unit test.

Rolling update (surge): replicas of the target revision are started first; an old
replica is drained only when a new one is ready to take its place, so capacity never
drops below the desired count while a rollout is under way. Except where a new replica
cannot be placed because old ones hold the room (a full GPU node): the controller names
the old replicas whose draining makes room for it (`make_room`, `Actuator.making_room`,
which asks the backend first, so only when it works), and the plan drains them too; the
rollout goes on one replica short for a while instead of never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from podium.core.phases import EndpointStatus, ReplicaState


@dataclass(frozen=True, slots=True)
class ReplicaView:
    replica_id: str
    revision: int
    state: ReplicaState
    started_at: float  # monotonic


@dataclass(frozen=True, slots=True)
class EndpointView:
    name: str
    status: EndpointStatus
    revision: int  # target revision
    desired: int
    crash_streak: int = 0
    backoff_until: float = 0.0
    failure: str | None = None  # set when the target revision cannot run (load error, crash loop)
    make_room: tuple[str, ...] = ()  # ready old replicas to drain: a waiting one then fits


@dataclass(slots=True)
class Plan:
    start: int = 0  # new replicas of the target revision to start
    drain: list[str] = field(default_factory=list)  # out of routing, then stopped when idle
    stop: list[str] = field(default_factory=list)  # stopped now (not serving anything)
    status: EndpointStatus | None = None
    reason: str | None = None
    delete: bool = False  # remove the endpoint row: it is deleting and has no replicas left

    @property
    def empty(self) -> bool:
        return not (self.start or self.drain or self.stop or self.delete)


_LIVE = (ReplicaState.STARTING, ReplicaState.READY)
_LEAVING = (ReplicaState.DRAINING, ReplicaState.STOPPING)


def plan(ep: EndpointView, replicas: Sequence[ReplicaView], now: float) -> Plan:
    live = [r for r in replicas if r.state in _LIVE]

    if ep.status is EndpointStatus.DELETING:
        return _stop_all(live, EndpointStatus.DELETING, delete=not replicas)
    if ep.status is EndpointStatus.PAUSED:
        return _stop_all(live, EndpointStatus.PAUSED)

    current = [r for r in live if r.revision == ep.revision]
    old = [r for r in live if r.revision != ep.revision]
    ready_current = [r for r in current if r.state is ReplicaState.READY]
    ready_old = [r for r in old if r.state is ReplicaState.READY]
    out = Plan()

    if ep.failure is not None:
        # The target revision cannot run: stop its replicas, keep older ones serving.
        out.stop = [r.replica_id for r in current]
        out.status = EndpointStatus.FAILED
        out.reason = ep.failure
        if ready_old:
            out.reason += f"; still serving revision {ready_old[0].revision}"
        return out

    # Target revision: start what is missing (unless backing off after crashes); a
    # starting replica counts toward the desired count. Scaling down drains surplus READY
    # replicas only, newest first: a starting one is never stopped (a wake may be waiting
    # for it); once ready, it is drained if it is still surplus.
    missing = ep.desired - len(current)
    if missing > 0 and now >= ep.backoff_until:
        out.start = missing
    surplus = len(ready_current) - ep.desired  # > 0 only when scaling down (missing < 0)
    if surplus > 0:
        newest = sorted(ready_current, key=lambda r: -r.started_at)
        out.drain += [r.replica_id for r in newest[:surplus]]

    # Old revisions: keep only as many ready ones as the new revision still lacks, less
    # those drained to make room for a new one that waits for it.
    keep_old = max(0, ep.desired - len(ready_current))
    out.stop += [r.replica_id for r in old if r.state is not ReplicaState.READY]
    ready_old.sort(key=lambda r: -r.started_at)  # keep the newest, drain the oldest
    drained = [r.replica_id for r in ready_old[keep_old:]]
    drained += [
        r.replica_id
        for r in ready_old
        if r.replica_id in ep.make_room and r.replica_id not in drained
    ]
    out.drain += drained

    # An old revision's replica still draining or stopping keeps the rollout under way:
    # `running` means only the current revision is left.
    leaving = [r for r in replicas if r.revision != ep.revision and r.state in _LEAVING]
    out.status, out.reason = _status(ep, ready_current, old + leaving, now, remaining=len(replicas))
    return out


def _status(
    ep: EndpointView,
    ready_current: list[ReplicaView],
    old: list[ReplicaView],  # of older revisions: live, draining or stopping
    now: float,
    *,
    remaining: int,
) -> tuple[EndpointStatus, str | None]:
    if ep.desired == 0:
        # Scaled to zero once no replica is left in any state (starting, draining, stopping).
        if remaining == 0:
            return EndpointStatus.SCALED_TO_ZERO, None
        left = f"scaling to zero: {remaining} replica(s) left"
        if ready_current or any(r.state is ReplicaState.READY for r in old):
            return EndpointStatus.RUNNING, left
        if ep.status in (EndpointStatus.RUNNING, EndpointStatus.UPDATING):
            return ep.status, left
        return EndpointStatus.INITIALIZING, left
    if old:
        return EndpointStatus.UPDATING, f"rolling out revision {ep.revision}"
    if len(ready_current) >= ep.desired:
        return EndpointStatus.RUNNING, None
    if ready_current:
        # Serving, with fewer replicas than desired (a replica is being replaced or added).
        return EndpointStatus.RUNNING, f"{len(ready_current)} of {ep.desired} replicas ready"
    if now < ep.backoff_until:
        return EndpointStatus.INITIALIZING, f"restarting after {ep.crash_streak} crash(es)"
    return EndpointStatus.INITIALIZING, None


def _stop_all(live: list[ReplicaView], status: EndpointStatus, *, delete: bool = False) -> Plan:
    out = Plan(status=status, delete=delete)
    for r in live:
        (out.drain if r.state is ReplicaState.READY else out.stop).append(r.replica_id)
    return out
