"""The controller on fake time: a real SQLite store with one endpoint ("spin", two
replicas), a fake backend, replicas answered by an httpx MockTransport, a fake gateway's
success counts. Used by test_hung.py and test_exits.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from podium.artifacts.sources import NodeCache
from podium.backends.base import AdoptCandidate, ObservedReplica, ReplicaLaunch
from podium.control.loop import Controller
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus, EventKind, ExitReason
from podium.core.routing import EndpointLoad, RoutingTableHolder
from podium.core.settings import ControlSettings, Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import EventRecord
from tests.support.db import sqlite_url

__all__ = ["sqlite_url"]  # the fixture `db` needs

HUNG = {
    "type": "about:blank",
    "title": "Hung",
    "status": 503,
    "detail": "hung: the oldest call into the python runtime has run for 13.0 s without "
    "finishing (limit 12 s)",
    "hung": True,
    "limit_s": 12,
    "running_calls": 1,
    "oldest_call_s": 13.0,
}


class FakeBackend:
    """Starts nothing; a killed replica is reported exited by the next `poll`."""

    name = "fake"

    def __init__(self) -> None:
        self.started: list[ReplicaLaunch] = []
        self.killed: list[tuple[str, ExitReason]] = []
        self._live: dict[str, ObservedReplica] = {}
        self._exited: list[ObservedReplica] = []

    def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        self.started.append(launch)
        obs = ObservedReplica(
            replica_id=launch.replica_id,
            endpoint=launch.endpoint,
            revision=launch.revision,
            host=f"r{len(self.started)}.test",
            port=9000,
            pid=None,
            started_at=datetime.now(UTC),
            alive=True,
        )
        self._live[launch.replica_id] = obs
        return obs

    stop_exit = ExitReason.STOPPED  # what a stopped replica reports (e.g. OOM on its way out)

    def stop(self, replica_id: str) -> None:
        self.kill(replica_id, self.stop_exit)

    def crash(self, replica_id: str, reason: ExitReason = ExitReason.CRASHED) -> None:
        """The replica's process ends by itself (reported by the next `poll`)."""
        obs = self._live.pop(replica_id)
        self._exited.append(replace(obs, alive=False, exit_code=-11, exit_reason=reason))

    def live(self, revision: int) -> list[str]:
        return sorted(rid for rid, obs in self._live.items() if obs.revision == revision)

    def kill(self, replica_id: str, reason: ExitReason) -> None:
        self.killed.append((replica_id, reason))
        obs = self._live.pop(replica_id)
        self._exited.append(replace(obs, alive=False, exit_code=-9, exit_reason=reason))

    def poll(self) -> list[ObservedReplica]:
        out, self._exited = self._exited, []
        return [*self._live.values(), *out]

    def adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        return []

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        return []

    def close(self, *, stop_replicas: bool = True) -> None:
        pass


class FakeGateway:
    """Successful requests per revision, as the gateway would count them."""

    def __init__(self) -> None:
        self.succeeded: dict[int, int] = {}

    def serve(self, revision: int, n: int = 1) -> None:
        self.succeeded[revision] = self.succeeded.get(revision, 0) + n

    def outstanding(self, replica_id: str) -> int:
        return 0

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        total = sum(self.succeeded.values())
        return {"spin": EndpointLoad(succeeded=total, succeeded_by_revision=dict(self.succeeded))}


class Replicas:
    """What the fake replicas answer: `hung` hosts say so, `silent` hosts time out."""

    def __init__(self) -> None:
        self.hung: set[str] = set()
        self.silent: set[str] = set()
        self.asked: list[str] = []  # hung_after_s of each liveness probe

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.silent:
            raise httpx.ReadTimeout("no answer", request=request)
        if request.url.path == "/health/live":
            self.asked.append(request.url.params.get("hung_after_s", ""))
            if host in self.hung:
                return httpx.Response(503, json=HUNG)
            return httpx.Response(200, json={"status": "live"})
        return httpx.Response(200, json={"status": "ready"})


@pytest.fixture
def db(sqlite_url: str, tmp_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    with database.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path=str(tmp_path),
        )
        spec = EndpointSpec.model_validate(
            {
                "name": "spin",
                "model": "bundle:1",
                "framework": "python",
                "timeout_s": 2,
                "liveness": {
                    "path": "/health/live",
                    "period_s": 1,
                    "timeout_s": 1,
                    "failure_threshold": 3,
                },
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.PENDING, desired_replicas=2
        )
    yield database
    database.dispose()


def events(db: Database, kind: EventKind) -> list[EventRecord]:
    with db.unit_of_work(read_only=True) as uow:
        return [e for e in uow.events.list("spin") if e.kind is kind]


def status(db: Database) -> EndpointStatus:
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.get("spin").status


Handler = Callable[[httpx.Request], httpx.Response]


class Harness:
    """A controller on fake time whose replicas answer through `handler`."""

    def __init__(
        self, tmp_path: Path, db: Database, handler: Handler, gateway: FakeGateway | None = None
    ) -> None:
        self.tmp_path, self.db, self.handler, self.gateway = tmp_path, db, handler, gateway
        self.backend = FakeBackend()
        self.holder = RoutingTableHolder()
        self.clock = FakeClock()
        self.control = ControlSettings(hung_grace_s=10.0, crash_loop_threshold=3)

    def routed(self) -> list[str]:
        return sorted(r.host for r in self.holder.table.endpoints["spin"].replicas)

    def run(self, steps: Callable[[Controller], Awaitable[None]]) -> None:
        settings = Settings(
            home=self.tmp_path / "home",
            control=self.control,
        )

        async def main() -> None:
            transport = httpx.MockTransport(self.handler)
            async with httpx.AsyncClient(transport=transport) as http:
                ctl = Controller(
                    settings,
                    self.db,
                    self.backend,
                    self.holder,
                    node_cache=NodeCache(self.tmp_path / "cache"),
                    clock=self.clock,
                    http=http,
                    gateway=self.gateway,
                )
                await steps(ctl)

        asyncio.run(main())

    async def passes(self, ctl: Controller, n: int) -> None:
        for _ in range(n):
            self.clock.advance(1)
            await ctl.run_once()
