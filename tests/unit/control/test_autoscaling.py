"""The autoscaler's glue on fake time: a real SQLite store, a fake gateway, no processes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.control.autoscaling import Autoscaling
from podium.control.loop import Controller
from podium.control.tracked import EndpointMemory, TrackedReplica
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.quotas import Quotas
from podium.core.routing import EndpointLoad, InProcessRoutingSource
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import EndpointRecord, EventRecord
from tests.support.db import sqlite_url
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas

__all__ = ["sqlite_url"]


@dataclass
class FakeGateway:
    loads: dict[str, EndpointLoad] = field(default_factory=dict)

    def outstanding(self, replica_id: str) -> int:
        return 0

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return dict(self.loads)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


def deploy(
    db: Database,
    name: str = "echo",
    *,
    desired: int,
    status: EndpointStatus = EndpointStatus.RUNNING,
    **scaling: Any,
) -> None:
    spec = EndpointSpec.model_validate(
        {"name": name, "model": "bundle:1", "framework": "python", "scaling": scaling}
    )
    with db.unit_of_work() as uow:
        uow.endpoints.create(spec, model_ref="bundle:1", status=status, desired_replicas=desired)


def endpoints(db: Database) -> list[EndpointRecord]:
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.list()


def scaled_events(db: Database, name: str = "echo") -> list[EventRecord]:
    with db.unit_of_work(read_only=True) as uow:
        return [e for e in uow.events.list(name) if e.kind is EventKind.SCALED]


def replica(rid: str, state: ReplicaState = ReplicaState.READY, endpoint: str = "echo") -> Any:
    return TrackedReplica(
        replica_id=rid,
        endpoint=endpoint,
        revision=1,
        host="replica.test",
        port=9000,
        pid=None,
        started_mono=0.0,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        log_location=None,
        state=state,
    )


def one_pass(
    scaler: Autoscaling,
    db: Database,
    replicas: list[TrackedReplica] | None = None,
    http: httpx.AsyncClient | None = None,
    **kw: Any,
) -> list[EndpointRecord]:
    return asyncio.run(scaler.run(endpoints(db), replicas or [], http, **kw))


# ---------------------------------------------------------------------- Autoscaling


def test_held_requests_at_zero_write_desired_and_a_scaled_event(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=4)
    scaler = Autoscaling(settings, db, clock, gateway)
    one_pass(scaler, db)
    assert scaled_events(db) == []
    gateway.loads["echo"] = EndpointLoad(held=9, requests=9)
    (ep,) = one_pass(scaler, db)
    assert ep.desired_replicas == 3  # ceil(9 held / 4 per replica), in the same pass
    (stored,) = endpoints(db)
    assert stored.desired_replicas == 3 and stored.revision == 1  # no revision
    (event,) = scaled_events(db)
    assert event.message == (
        "scaled 0→3: 9 request(s) held with no ready replica, target 4 per replica"
    )
    assert event.data["from"] == 0 and event.data["to"] == 3
    assert event.data["held"] == 9 and event.data["signal"] == "held"


def test_the_last_decision_is_remembered_and_a_new_scaler_resumes_from_it(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    """The decision goes into the controller's endpoint memory (which `recall` persists);
    a scaler of a new controller, given that memory, knows when the count last changed, so
    the stability period runs on from then instead of starting over."""
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=4)
    memory = {"echo": EndpointMemory()}
    scaler = Autoscaling(settings, db, clock, gateway, memory=memory)
    gateway.loads["echo"] = EndpointLoad(held=9, requests=9)
    one_pass(scaler, db)
    mem = memory["echo"]
    assert (mem.scale_desired, mem.scaled_at) == (3, clock.monotonic())
    assert mem.scale_reason is not None and mem.scale_reason.startswith("scaled 0→3")
    clock.advance(5)
    fresh = Autoscaling(settings, db, clock, gateway, memory=memory)
    one_pass(fresh, db)
    state = fresh.state("echo")
    assert state is not None
    assert (state.known_desired, state.last_change) == (3, clock.monotonic() - 5)
    # A count changed by someone else since: the policy starts over, as before.
    with db.unit_of_work() as uow:
        uow.endpoints.set_desired("echo", 1)
    gateway.loads["echo"] = EndpointLoad(in_flight=1, requests=9)  # one per replica
    other = Autoscaling(settings, db, clock, gateway, memory=memory)
    one_pass(other, db)
    state = other.state("echo")
    assert state is not None
    assert (state.known_desired, state.last_change) == (1, clock.monotonic())


def test_idle_endpoint_goes_to_zero_with_an_event_naming_the_idle_time(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    deploy(
        db,
        desired=1,
        min_replicas=0,
        scale_to_zero_after="5s",
        stable_window="2s",
        panic_window="1s",
    )
    scaler = Autoscaling(settings, db, clock, gateway)
    ready = [replica("r1")]
    gateway.loads["echo"] = EndpointLoad(in_flight=1, requests=1)
    one_pass(scaler, db, ready)
    gateway.loads["echo"] = EndpointLoad(in_flight=0, requests=1)
    for _ in range(4):
        clock.advance(1)
        assert one_pass(scaler, db, ready)[0].desired_replicas == 1
    clock.advance(1)
    assert one_pass(scaler, db, ready)[0].desired_replicas == 0
    (event,) = scaled_events(db)
    assert event.message == "scaled 1→0: idle for 5.0s"
    assert event.data["idle_s"] == 5.0


def test_request_rate_comes_from_the_gateway_counter(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    deploy(db, desired=1, max_replicas=8, target_rps=5, target_concurrency=100)
    scaler = Autoscaling(settings, db, clock, gateway)
    ready = [replica("r1")]
    for second in range(40):
        gateway.loads["echo"] = EndpointLoad(in_flight=1, requests=20 * second)
        one_pass(scaler, db, ready)
        clock.advance(1)
    (ep,) = endpoints(db)
    assert ep.desired_replicas == 4  # 20 requests/s / 5 per replica
    assert any("20 requests/s" in e.message for e in scaled_events(db))


def test_paused_deleting_failed_and_failing_endpoints_are_left_alone(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    deploy(db, "paused", desired=0, status=EndpointStatus.PAUSED, min_replicas=0)
    deploy(db, "deleting", desired=0, status=EndpointStatus.DELETING, min_replicas=0)
    deploy(db, "failed", desired=0, status=EndpointStatus.FAILED, min_replicas=0)
    deploy(db, "failing", desired=0, min_replicas=0)
    for name in ("paused", "deleting", "failed", "failing"):
        gateway.loads[name] = EndpointLoad(held=5, requests=5)
    scaler = Autoscaling(settings, db, clock, gateway)
    out = one_pass(scaler, db, skip=lambda name: name == "failing")
    assert [e.desired_replicas for e in out] == [0, 0, 0, 0]
    assert all(scaled_events(db, n) == [] for n in ("paused", "deleting", "failed", "failing"))


def test_without_a_gateway_nothing_is_scaled(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    deploy(db, desired=1, min_replicas=0, scale_to_zero_after=0)
    scaler = Autoscaling(settings, db, clock, None)
    clock.advance(3600)
    assert one_pass(scaler, db, [replica("r1")])[0].desired_replicas == 1


def test_a_change_made_meanwhile_is_not_overwritten(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=4)
    scaler = Autoscaling(settings, db, clock, gateway)
    gateway.loads["echo"] = EndpointLoad(held=9, requests=9)
    stale = endpoints(db)
    with db.unit_of_work() as uow:  # a user's wake lands between the read and the write
        uow.endpoints.set_desired("echo", 1)
    (out,) = asyncio.run(scaler.run(stale, [], None))
    assert out.desired_replicas == 0  # the stale record, unchanged
    assert endpoints(db)[0].desired_replicas == 1
    assert scaled_events(db) == []
    (again,) = one_pass(scaler, db)  # the next pass decides on the fresh record
    assert again.desired_replicas == 3


def test_rules_read_the_ready_replicas_metrics(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    rules = [{"metric": "queue_depth", "target": 2}]
    deploy(db, desired=2, max_replicas=8, rules=rules, stable_window="5s", panic_window="1s")
    scraped: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        scraped.append(str(request.url))
        return httpx.Response(200, text="podium_replica_queued 3.0\n")

    scaler = Autoscaling(settings, db, clock, gateway)
    gateway.loads["echo"] = EndpointLoad(in_flight=1, requests=1)
    replicas = [replica("r1"), replica("r2"), replica("r3", ReplicaState.STARTING)]

    async def passes() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            for _ in range(10):
                await scaler.run(endpoints(db), replicas, http)
                clock.advance(1)

    asyncio.run(passes())
    assert endpoints(db)[0].desired_replicas == 3  # 6 queued in all / 2 per replica
    assert scraped and all(u == "http://replica.test:9000/metrics" for u in scraped)
    assert len(scraped) == 20  # the two ready replicas, once a second; not the starting one
    assert "queue_depth 3 per replica on 2" in scaled_events(db)[-1].message


# ---------------------------------------------------------------------- the controller


def test_controller_starts_replicas_in_the_pass_that_scales_up(
    tmp_path: Path, settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    with db.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path=str(tmp_path),
        )
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=2)
    backend = FakeBackend()
    ctl = Controller(
        settings,
        db,
        backend,
        InProcessRoutingSource(),
        gateway=gateway,
        clock=clock,
        http=FakeReplicas(refuse_all=True).client(),  # the replica stays starting
    )
    asyncio.run(ctl.run_once())
    assert backend.started == []
    gateway.loads["echo"] = EndpointLoad(held=1, requests=1)

    async def twice() -> None:
        await ctl.run_once()
        clock.advance(1)
        await ctl.run_once()  # the starting replica counts: nothing more is started

    asyncio.run(twice())
    assert len(backend.started) == 1
    (ep,) = endpoints(db)
    assert (ep.desired_replicas, ep.status) == (1, EndpointStatus.INITIALIZING)
    assert ctl.scaling.state("echo") is not None


def test_a_wake_is_capped_by_the_memory_quota(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    """`resources` replicas of 0.02 CPUs and 4 GiB: `max_cpus: 1` would allow 50; the
    memory quota allows 2, and the cap names it."""
    spec = EndpointSpec.model_validate(
        {
            "name": "echo",
            "model": "bundle:1",
            "framework": "python",
            "resources": {"cpus": 0.02, "memory": "4Gi"},
            "scaling": {"min_replicas": 0, "max_replicas": 50},
        }
    )
    with db.unit_of_work() as uow:
        uow.projects.update("default", quotas=Quotas(max_cpus=1, max_memory_mb=8192))
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.SCALED_TO_ZERO, desired_replicas=0
        )
    scaler = Autoscaling(settings, db, clock, gateway)
    gateway.loads["echo"] = EndpointLoad(held=40, requests=40)
    (ep,) = one_pass(scaler, db)
    assert ep.desired_replicas == 2
    (event,) = scaled_events(db)
    assert event.message.endswith("capped by project quota max_memory_mb=8192")
