"""The controller's persisted memory of an endpoint (`store.memory`)."""

from __future__ import annotations

from datetime import UTC, datetime

from podium.core.phases import EndpointStatus
from podium.store import Database
from podium.store.records import EndpointMemoryRecord
from tests.unit.store.helpers import add_model, spec

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _endpoint(db: Database, name: str = "iris-api") -> None:
    add_model(db)
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec(name), model_ref="iris:1", status=EndpointStatus.PENDING, desired_replicas=1
        )


def test_memory_is_written_read_back_and_replaced(database: Database) -> None:
    _endpoint(database)
    first = EndpointMemoryRecord(
        "iris-api", crash_streak=2, crashed_at=T0, backoff_until=T0, restarts=1
    )
    with database.unit_of_work() as uow:
        assert uow.memory.get("iris-api") is None
        assert uow.memory.put(first)
    failed = EndpointMemoryRecord(
        "iris-api",
        crash_streak=3,
        failure="crash loop",
        failure_generation=4,
        scale_desired=2,
        scale_reason="scaled up",
        scaled_at=T0,
    )
    with database.unit_of_work() as uow:
        assert uow.memory.get("iris-api") == first
        assert uow.memory.put(failed)
    with database.unit_of_work(read_only=True) as uow:
        assert uow.memory.get("iris-api") == failed


def test_memory_of_a_missing_endpoint_is_not_written(database: Database) -> None:
    with database.unit_of_work() as uow:
        assert not uow.memory.put(EndpointMemoryRecord("gone", crash_streak=1))
    with database.unit_of_work(read_only=True) as uow:
        assert uow.memory.get("gone") is None


def test_memory_is_deleted_with_its_endpoint(database: Database) -> None:
    _endpoint(database)
    with database.unit_of_work() as uow:
        uow.memory.put(EndpointMemoryRecord("iris-api", failure="broken", failure_generation=1))
    with database.unit_of_work() as uow:
        uow.endpoints.delete("iris-api")
    _endpoint_again = spec("iris-api")
    with database.unit_of_work() as uow:
        uow.endpoints.create(
            _endpoint_again, model_ref="iris:1", status=EndpointStatus.PENDING, desired_replicas=1
        )
        assert uow.memory.get("iris-api") is None  # a new endpoint of that name starts clean
