"""The backend as a controller that may lose the lead sees it: actions refused once it has.

Database writes are fenced inside their transaction (`fencing`); a backend action (start,
stop, kill a replica) is not a database write, so `FencedBackend` asks the lease before each
one whether this process still leads (`Lease.holds()`), remembering a True answer for at
most `HOLDS_CACHE_S`: a stale leader can act on a replica for at most that long after its
connection failed, and the check costs one small query per pass, not one per action. A
refused action raises `Fenced` and changes nothing. Observation (poll, prepare, adopt,
resources, room, logs) is left as it is: it changes no replica. Every optional protocol of
`backends.base` the inner backend has is passed through (the controller asks them with
`isinstance`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping

from podium.backends.base import (
    AdoptCandidate,
    Backend,
    HasRoom,
    KeepsLogs,
    LogFollower,
    ModelSource,
    ObservedReplica,
    Preparation,
    Prewarms,
    ReplicaLaunch,
    ReplicaResources,
    ReplicaSize,
    ReplicaStartup,
    ReportsStartup,
)
from podium.coordination.leadership import Lease
from podium.core.errors import Fenced
from podium.core.phases import ExitReason

HOLDS_CACHE_S = 0.25


class FencedBackend:
    """Delegates to `inner`; start, stop and kill only while `lease` holds."""

    def __init__(self, inner: Backend, lease: Lease) -> None:
        self.inner = inner
        self.name = inner.name
        self._lease = lease
        self._held_until = 0.0  # monotonic: a True from holds() is trusted until then

    def _check(self, action: str) -> None:
        now = time.monotonic()
        if now < self._held_until:
            return
        if not self._lease.holds():
            self._held_until = 0.0
            raise Fenced(f"this controller no longer leads; {action} refused")
        self._held_until = now + HOLDS_CACHE_S

    def forget_lead(self) -> None:
        """The controller saw the lead go: trust no cached answer."""
        self._held_until = 0.0

    # ------------------------------------------------------------------ actions (fenced)

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        self._check(f"starting replica {launch.replica_id}")
        return await self.inner.start(launch)

    async def stop(self, replica_id: str) -> None:
        self._check(f"stopping replica {replica_id}")
        await self.inner.stop(replica_id)

    async def kill(self, replica_id: str, reason: ExitReason) -> None:
        self._check(f"killing replica {replica_id}")
        await self.inner.kill(replica_id, reason)

    # ------------------------------------------------------------------ the rest, as it is

    async def prepare(self, model: ModelSource) -> Preparation:
        return await self.inner.prepare(model)

    async def retain(self, models: Iterable[ModelSource]) -> None:
        await self.inner.retain(models)

    async def poll(self) -> list[ObservedReplica]:
        return await self.inner.poll()

    async def adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        return await self.inner.adopt(candidates)

    async def resources(self, replica_ids: Iterable[str]) -> Mapping[str, ReplicaResources]:
        return await self.inner.resources(replica_ids)

    async def close(self, *, stop_replicas: bool = True) -> None:
        await self.inner.close(stop_replicas=stop_replicas)

    async def prewarm(self, runtime: str) -> None:
        if isinstance(self.inner, Prewarms):
            await self.inner.prewarm(runtime)

    async def forget_endpoint(self, endpoint: str) -> None:
        if isinstance(self.inner, KeepsLogs):
            await self.inner.forget_endpoint(endpoint)

    def room_for(self, size: ReplicaSize, without: Collection[str] = ()) -> int | None:
        if isinstance(self.inner, HasRoom):  # the local backend's GPUs
            return self.inner.room_for(size, without)
        return None

    def startup(self, replica_id: str) -> ReplicaStartup | None:
        if isinstance(self.inner, ReportsStartup):
            return self.inner.startup(replica_id)
        return None

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        return self.inner.logs(replica_id, tail)

    def kept_logs(self, endpoint: str) -> list[str]:
        return self.inner.kept_logs(endpoint)

    def follow_logs(self, replica_id: str, tail: int | None) -> tuple[list[str], LogFollower]:
        return self.inner.follow_logs(replica_id, tail)


def _is_backend(backend: FencedBackend) -> Backend:  # mypy: it implements the protocol
    return backend
