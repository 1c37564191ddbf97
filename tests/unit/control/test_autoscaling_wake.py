"""`wake` (POST /api/v1/endpoints/{name}/wake) at the service level: what it writes and
what it refuses. The end-to-end path (a real server, the CLI) is in tests/integration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.api.services.endpoints import EndpointService
from podium.core.errors import Conflict
from podium.core.phases import EndpointStatus, EventKind
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec, ScaleRequest
from podium.store import Database
from tests.support.db import sqlite_url

__all__ = ["sqlite_url"]


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def woken() -> list[str | None]:
    return []


@pytest.fixture
def service(tmp_path: Path, db: Database, woken: list[str | None]) -> EndpointService:
    return EndpointService(Settings(home=tmp_path / "home"), db, woken.append)


def put(db: Database, *, desired: int, status: EndpointStatus, **scaling: Any) -> None:
    spec = EndpointSpec.model_validate(
        {"name": "nap", "model": "bundle:1", "framework": "python", "scaling": scaling}
    )
    with db.unit_of_work() as uow:
        uow.endpoints.create(spec, model_ref="bundle:1", status=status, desired_replicas=desired)


def scaled(db: Database) -> list[str]:
    with db.unit_of_work(read_only=True) as uow:
        return [e.message for e in uow.events.list("nap") if e.kind is EventKind.SCALED]


def test_wake_brings_a_scaled_to_zero_endpoint_to_one(
    service: EndpointService, db: Database, woken: list[str | None]
) -> None:
    put(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=3)
    ep = service.wake("nap")
    assert ep.desired_replicas == 1 and ep.revision == 1
    assert scaled(db) == ["scaled 0→1: woken by user"]
    assert woken == ["nap"]


def test_wake_is_a_no_op_on_an_endpoint_that_is_up(
    service: EndpointService, db: Database, woken: list[str | None]
) -> None:
    put(db, desired=2, status=EndpointStatus.RUNNING, min_replicas=0, max_replicas=3)
    assert service.wake("nap").desired_replicas == 2
    assert scaled(db) == []


def test_wake_respects_min_replicas(service: EndpointService, db: Database) -> None:
    put(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=3)
    with db.unit_of_work() as uow:  # min raised behind the API's back: wake still clamps
        rec = uow.endpoints.get("nap")
        spec = rec.spec.model_copy(
            update={"scaling": rec.spec.scaling.model_copy(update={"min_replicas": 2})}
        )
        uow.endpoints.update_spec("nap", spec, new_revision_model_ref=None, desired_replicas=0)
    assert service.wake("nap").desired_replicas == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (EndpointStatus.PAUSED, "resume it first"),
        (EndpointStatus.DELETING, "being deleted"),
        (EndpointStatus.FAILED, "failed"),
    ],
)
def test_wake_refuses_paused_deleting_and_failed_endpoints(
    service: EndpointService,
    db: Database,
    woken: list[str | None],
    status: EndpointStatus,
    message: str,
) -> None:
    put(db, desired=0, status=status, min_replicas=0, max_replicas=3)
    with pytest.raises(Conflict, match=message):
        service.wake("nap")
    with db.unit_of_work(read_only=True) as uow:
        assert uow.endpoints.get("nap").desired_replicas == 0
    assert scaled(db) == [] and woken == []


def test_manual_scale_clamps_desired_into_the_new_bounds(
    service: EndpointService, db: Database
) -> None:
    put(db, desired=4, status=EndpointStatus.RUNNING, min_replicas=1, max_replicas=5)
    assert service.scale("nap", ScaleRequest(min_replicas=1, max_replicas=2)).desired_replicas == 2
    assert service.scale("nap", ScaleRequest(min_replicas=3, max_replicas=4)).desired_replicas == 3
    ep = service.scale("nap", ScaleRequest(min_replicas=0, max_replicas=4))
    assert ep.desired_replicas == 3  # lowering min leaves the count to the autoscaler
    assert ep.revision == 1
