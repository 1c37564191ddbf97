"""A backend that starts no process, for unit tests of the controller on fake time.

Each started replica gets its own host (`r1.test`, `r2.test`, … in start order; port 9000),
which is how `fake_replicas.FakeReplicas` tells them apart. A stopped or killed replica,
and one the test `crash`es, is reported exited by the next `poll`, as a real backend does.

Models are ready at once, unless the test gives it the local backend's real model cache
(`models`, for download tests): then `prepare` and `retain` are that cache's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from podium.backends.base import (
    AdoptCandidate,
    ModelSource,
    ObservedReplica,
    Preparation,
    ReplicaLaunch,
    ReplicaResources,
)
from podium.backends.model_cache import ModelCache
from podium.core.phases import ExitReason

PORT = 9000


class FakeBackend:
    name = "fake"

    stop_exit = ExitReason.STOPPED  # what a stopped replica reports (e.g. OOM on its way out)

    def __init__(self, models: ModelCache | None = None) -> None:
        self.models = models
        self.started: list[ReplicaLaunch] = []
        self.stopped: list[str] = []  # asked to stop (drained, not needed)
        self.killed: list[tuple[str, ExitReason]] = []  # killed, or stopped, with the reason
        self._live: dict[str, ObservedReplica] = {}
        self._exited: list[ObservedReplica] = []
        self.used: dict[str, ReplicaResources] = {}  # what `resources` reports, by replica

    async def prepare(self, model: ModelSource) -> Preparation:
        if self.models is None:
            return Preparation.ready()
        return self.models.prepare(model)

    async def retain(self, models: Iterable[ModelSource]) -> None:
        if self.models is not None:
            self.models.retain(models)

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        return self.start_now(launch)

    def start_now(self, launch: ReplicaLaunch) -> ObservedReplica:
        self.started.append(launch)
        obs = ObservedReplica(
            replica_id=launch.replica_id,
            endpoint=launch.endpoint,
            revision=launch.revision,
            host=f"r{len(self.started)}.test",
            port=PORT,
            pid=None,
            started_at=datetime.now(UTC),
            alive=True,
        )
        self._live[launch.replica_id] = obs
        return obs

    async def stop(self, replica_id: str) -> None:
        self.stopped.append(replica_id)
        await self.kill(replica_id, self.stop_exit)

    async def kill(self, replica_id: str, reason: ExitReason) -> None:
        self.killed.append((replica_id, reason))
        obs = self._live.pop(replica_id)  # a second stop of one replica is a bug
        self._exited.append(replace(obs, alive=False, exit_code=-9, exit_reason=reason))

    def crash(self, replica_id: str, reason: ExitReason = ExitReason.CRASHED) -> None:
        """The replica's process ends by itself (reported by the next `poll`)."""
        obs = self._live.pop(replica_id)
        self._exited.append(replace(obs, alive=False, exit_code=-11, exit_reason=reason))

    def live(self, revision: int | None = None) -> list[str]:
        """The replicas running now (of one revision, or all), by id."""
        return sorted(
            rid for rid, obs in self._live.items() if revision is None or obs.revision == revision
        )

    async def poll(self) -> list[ObservedReplica]:
        out, self._exited = self._exited, []
        return [*self._live.values(), *out]

    async def adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        return []  # a new process: nothing of a previous server's replicas runs

    async def resources(self, replica_ids: Iterable[str]) -> Mapping[str, ReplicaResources]:
        """What the test set in `used` for each replica asked about (none by default)."""
        return {rid: self.used[rid] for rid in replica_ids if rid in self.used}

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        return []

    def kept_logs(self, endpoint: str) -> list[str]:
        return []

    async def close(self, *, stop_replicas: bool = True) -> None:
        pass
