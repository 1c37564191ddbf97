"""The task queue feeds the autoscaler (issue 13): a real SQLite store on fake time, a fake
gateway with no load at all, tasks enqueued and claimed through `TaskRepo`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.control.autoscaling import Autoscaling
from podium.control.loop import Controller
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus
from podium.core.routing import InProcessRoutingSource
from podium.core.settings import Settings, TaskSettings
from podium.core.tasks import AttemptOutcome
from podium.store import Database
from podium.store.task_records import NewTask, Outcome
from tests.support.db import sqlite_url
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.test_autoscaling import (
    FakeGateway,
    deploy,
    endpoints,
    one_pass,
    replica,
    scaled_events,
)

__all__ = ["sqlite_url"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(sqlite_url: str, clock: FakeClock) -> Iterator[Database]:
    """The store on the scaler's fake clock, so a task's age is fake time too."""
    database = Database(sqlite_url, clock=clock)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", tasks=TaskSettings(slot_share=0.5))


def enqueue(db: Database, n: int, endpoint: str = "echo") -> None:
    with db.unit_of_work() as uow:
        uow.tasks.enqueue_many(
            [
                NewTask(endpoint, "default", "POST", "/predict", b"{}", lease_s=60.0)
                for _ in range(n)
            ]
        )


def queue_pass(scaler: Autoscaling, db: Database, replicas: list[object] | None = None) -> int:
    """One pass as the loop runs it: the queue read in the pass's store access."""
    with db.unit_of_work(read_only=True) as uow:
        scaler.read_queue(uow)
    (ep,) = one_pass(scaler, db, replicas or [])  # type: ignore[arg-type]
    return ep.desired_replicas


def test_the_controller_starts_replicas_at_zero_for_queued_tasks_alone(
    tmp_path: Path, settings: Settings, db: Database, clock: FakeClock
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
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=4)
    backend = FakeBackend()
    ctl = Controller(
        settings,
        db,
        backend,
        InProcessRoutingSource(),
        gateway=FakeGateway(),  # nothing in flight, nothing held: the queue alone
        clock=clock,
        http=FakeReplicas(refuse_all=True).client(),  # the replicas stay starting
    )
    asyncio.run(ctl.run_once())
    assert backend.started == []
    enqueue(db, 6)
    clock.advance(2.5)
    asyncio.run(ctl.run_once())
    assert len(backend.started) == 2  # ceil(6 tasks / (0.5 x 8 slots per replica))
    (ep,) = endpoints(db)
    assert (ep.desired_replicas, ep.status) == (2, EndpointStatus.INITIALIZING)
    (event,) = scaled_events(db)
    assert event.message == (
        "scaled 0→2: 6 queued tasks (oldest 2.5 s) with no ready replica, "
        "4 task slot(s) per replica"
    )
    assert (event.data["signal"], event.data["queued"], event.data["oldest_queued_s"]) == (
        "queue",
        6,
        2.5,
    )


def test_running_tasks_hold_the_endpoint_up_and_it_goes_to_zero_once_drained(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    deploy(
        db,
        desired=0,
        status=EndpointStatus.SCALED_TO_ZERO,
        min_replicas=0,
        max_replicas=4,
        scale_to_zero_after="10s",
        stable_window="4s",
        panic_window="1s",
    )
    scaler = Autoscaling(settings, db, clock, FakeGateway())
    assert queue_pass(scaler, db) == 0
    enqueue(db, 1)
    clock.advance(1)
    assert queue_pass(scaler, db) == 1  # one task: one replica
    with db.unit_of_work() as uow:
        (task,) = uow.tasks.claim("d1", {"echo": 1})
    ready = [replica("r1")]
    for _ in range(30):  # a 30 s task, twice scale_to_zero_after: never idle under it
        clock.advance(1)
        assert queue_pass(scaler, db, ready) == 1
    with db.unit_of_work() as uow:
        uow.tasks.finish(task.id, task.attempt, "d1", Outcome(AttemptOutcome.SUCCEEDED, 200))
    for _ in range(9):
        clock.advance(1)
        assert queue_pass(scaler, db, ready) == 1
    clock.advance(1)
    assert queue_pass(scaler, db, ready) == 0  # 10 s after the queue drained
    assert [e.message for e in scaled_events(db)] == [
        "scaled 0→1: 1 queued task (oldest 1.0 s) with no ready replica, "
        "4 task slot(s) per replica",
        "scaled 1→0: idle for 10s",
    ]


def test_the_queue_is_read_at_most_once_a_second(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=4)
    scaler = Autoscaling(settings, db, clock, FakeGateway())
    assert queue_pass(scaler, db) == 0  # read: empty
    enqueue(db, 3)
    clock.advance(0.5)
    assert queue_pass(scaler, db) == 0  # the last figures stand
    clock.advance(0.5)
    assert queue_pass(scaler, db) == 1  # read again: 3 tasks, 4 slots per replica


def test_without_a_gateway_the_queue_is_not_read_and_nothing_scales(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=4)
    enqueue(db, 3)
    scaler = Autoscaling(settings, db, clock, None)
    assert queue_pass(scaler, db) == 0
    assert scaled_events(db) == []
