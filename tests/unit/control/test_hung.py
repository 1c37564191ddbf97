"""The controller's reaction to a hung replica, on fake time: a real SQLite store, a fake
backend, replicas answered by an httpx MockTransport. The whole path with real processes
is tests/integration/test_hung_model.py."""

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

__all__ = ["sqlite_url"]

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
            log_path=Path("/dev/null"),
            alive=True,
        )
        self._live[launch.replica_id] = obs
        return obs

    def stop(self, replica_id: str) -> None:
        self.kill(replica_id, ExitReason.STOPPED)

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

    def routed(self) -> list[str]:
        return sorted(r.host for r in self.holder.table.endpoints["spin"].replicas)

    def run(self, steps: Callable[[Controller], Awaitable[None]]) -> None:
        settings = Settings(
            home=self.tmp_path / "home",
            control=ControlSettings(hung_grace_s=10.0, crash_loop_threshold=3),
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


def test_a_replica_that_says_hung_leaves_routing_at_once_and_is_replaced(
    tmp_path: Path, db: Database
) -> None:
    replicas = Replicas()
    h = Harness(tmp_path, db, replicas)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert h.routed() == ["r1.test", "r2.test"]
        replicas.hung.add("r1.test")
        await h.passes(ctl, 1)  # one hung answer is enough: the grace was the wait
        assert h.routed() == ["r2.test"]
        assert h.backend.killed == [(h.backend.started[0].replica_id, ExitReason.HUNG)]
        await h.passes(ctl, 3)  # the exit is seen, a replacement starts and becomes ready

    h.run(steps)
    assert set(replicas.asked) == {"12"}  # timeout_s 2 + grace 10
    first = h.backend.started[0].replica_id
    (hung,) = events(db, EventKind.REPLICA_HUNG)
    assert hung.message == f"replica {first} was restarted: {HUNG['detail']}"
    assert hung.data["reason"] == "hung"
    assert (hung.data["oldest_call_s"], hung.data["limit_s"]) == (13.0, 12.0)
    (restarted,) = events(db, EventKind.REPLICA_RESTARTED)
    assert h.backend.started[2].replica_id in restarted.message
    assert h.routed() == ["r2.test", "r3.test"]
    assert status(db) is EndpointStatus.RUNNING


def test_one_poison_input_among_good_traffic_never_fails_the_endpoint(
    tmp_path: Path, db: Database
) -> None:
    replicas, gateway = Replicas(), FakeGateway()
    h = Harness(tmp_path, db, replicas, gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        for _ in range(5):  # more hangs than the crash loop threshold (3)
            gateway.serve(1)  # the revision served good requests between the hangs
            replicas.hung.add(h.routed()[0])
            await h.passes(ctl, 4)

    h.run(steps)
    assert len(events(db, EventKind.REPLICA_HUNG)) == 5
    assert status(db) is EndpointStatus.RUNNING
    assert len(h.routed()) == 2


def test_a_model_that_hangs_on_every_input_fails_the_endpoint(tmp_path: Path, db: Database) -> None:
    # Successes of another revision (an old one, during a rollout) do not hide it either.
    replicas, gateway = Replicas(), FakeGateway()
    h = Harness(tmp_path, db, replicas, gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        for _ in range(3):  # the crash loop threshold
            gateway.serve(0, 10)
            replicas.hung.add(h.routed()[0])
            await h.passes(ctl, 4)

    h.run(steps)
    assert len(events(db, EventKind.REPLICA_HUNG)) == 3
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get("spin")
    assert ep.status is EndpointStatus.FAILED
    assert ep.status_reason is not None
    assert "crashed or hung 3 times while serving" in ep.status_reason
    assert str(HUNG["detail"]) in ep.status_reason


def test_a_replica_that_answers_no_probe_past_timeout_and_grace_is_hung(
    tmp_path: Path, db: Database
) -> None:
    replicas = Replicas()
    h = Harness(tmp_path, db, replicas)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        replicas.silent.add("r2.test")  # its event loop is blocked (a call holding the GIL)
        await h.passes(ctl, 12)  # silent for 11 s: under timeout_s 2 + grace 10
        assert h.backend.killed == []
        await h.passes(ctl, 1)  # 12 s
        assert [reason for _, reason in h.backend.killed] == [ExitReason.HUNG]
        await h.passes(ctl, 3)

    h.run(steps)
    (hung,) = events(db, EventKind.REPLICA_HUNG)
    assert "no answer to liveness probes for 12s" in hung.message
    assert (hung.data["unanswered_s"], hung.data["limit_s"]) == (12, 12)
    assert len(events(db, EventKind.REPLICA_RESTARTED)) == 1
    assert h.routed() == ["r1.test", "r3.test"]


def test_a_long_call_within_the_timeout_is_not_a_hang(tmp_path: Path, db: Database) -> None:
    replicas = Replicas()
    h = Harness(tmp_path, db, replicas)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        replicas.silent.add("r2.test")
        await h.passes(ctl, 11)  # more unanswered probes than the failure threshold (3)
        replicas.silent.clear()  # the call finished
        await h.passes(ctl, 20)

    h.run(steps)
    assert h.backend.killed == []
    assert events(db, EventKind.REPLICA_HUNG) == []
    assert h.routed() == ["r1.test", "r2.test"]


def test_other_liveness_failures_stay_unhealthy(tmp_path: Path, db: Database) -> None:
    replicas = Replicas()

    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.host == "r1.test" and request.url.path == "/health/live":
            return httpx.Response(503, json={"status": 503, "detail": "sad"})
        return replicas(request)

    h = Harness(tmp_path, db, broken)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 6)

    h.run(steps)
    assert events(db, EventKind.REPLICA_HUNG) == []
    unhealthy = events(db, EventKind.REPLICA_UNHEALTHY)
    assert unhealthy and "liveness probe failed 3 times: HTTP 503" in unhealthy[0].message
