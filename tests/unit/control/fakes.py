"""The controller on fake time: a real SQLite store with one endpoint ("spin", two
replicas), the shared fake backend (`tests.support.fake_backend`), replicas answered in
memory (`tests.support.fake_replicas`), a fake gateway's success counts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from podium.control.loop import Controller
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus, EventKind
from podium.core.routing import EndpointLoad, InProcessRoutingSource
from podium.core.settings import ControlSettings, Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import EventRecord
from tests.support.db import sqlite_url
from tests.support.fake_backend import FakeBackend

__all__ = ["sqlite_url"]  # the fixture `db` needs


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


def add_bundle(database: Database, path: Path) -> None:
    """The python model `bundle:1` (its files at `path`) the endpoints of these tests use."""
    with database.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path=str(path),
        )


@pytest.fixture
def db(sqlite_url: str, tmp_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    add_bundle(database, tmp_path)
    with database.unit_of_work() as uow:
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
        self.holder = InProcessRoutingSource()
        self.clock = FakeClock()
        self.control = ControlSettings(hung_grace_s=10.0, crash_loop_threshold=3)

    def host(self, replica_id: str) -> str:
        """The host the fake backend gave the replica (how `FakeReplicas` knows it)."""
        (launch,) = [i for i, s in enumerate(self.backend.started) if s.replica_id == replica_id]
        return f"r{launch + 1}.test"

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
