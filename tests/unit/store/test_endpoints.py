from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from podium.core.clock import FakeClock
from podium.core.errors import Conflict, Invalid, NotFound
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.store import Database
from podium.store.records import EndpointRecord, ReplicaRecord
from podium.store.tables import EndpointRow, RevisionRow
from tests.unit.store.helpers import spec

S = EndpointStatus


def create(db: Database, name: str = "iris-api", **changes: object) -> EndpointRecord:
    with db.unit_of_work() as uow:
        return uow.endpoints.create(
            spec(name, **changes), model_ref="iris:1", status=S.PENDING, desired_replicas=1
        )


def test_create_writes_the_endpoint_and_revision_1(database: Database) -> None:
    created = create(database)
    with database.unit_of_work() as uow:
        got = uow.endpoints.get("iris-api")
        revisions = uow.endpoints.revisions("iris-api")
    assert got == created
    assert (got.revision, got.model_ref, got.generation, got.status) == (1, "iris:1", 1, S.PENDING)
    assert got.spec == spec("iris-api")
    assert got.created_at.tzinfo is not None and got.updated_at.tzinfo is not None
    assert [(r.number, r.model_ref, r.spec) for r in revisions] == [(1, "iris:1", got.spec)]
    assert revisions[0].created_at.tzinfo is not None


def test_a_taken_name_is_a_conflict_on_name(database: Database) -> None:
    create(database)
    with pytest.raises(Conflict) as e, database.unit_of_work() as uow:
        uow.endpoints.create(spec(), model_ref="iris:1", status=S.PENDING, desired_replicas=1)
    assert (e.value.message, e.value.field) == ("endpoint 'iris-api' already exists", "name")


def test_get_and_revision_not_found(database: Database) -> None:
    create(database)
    with database.unit_of_work() as uow:
        with pytest.raises(NotFound) as e:
            uow.endpoints.get("ghost")
        assert (e.value.message, e.value.field) == ("endpoint 'ghost' not found", "name")
        with pytest.raises(NotFound) as e:
            uow.endpoints.revision("iris-api", 2)
        assert e.value.field == "revision"
        with pytest.raises(NotFound, match="endpoint 'ghost' not found"):
            uow.endpoints.revision("ghost", 1)
        with pytest.raises(NotFound):
            uow.endpoints.revisions("ghost")
        with pytest.raises(NotFound):
            uow.endpoints.set_status("ghost", S.RUNNING)


def test_update_spec_without_a_new_revision(database: Database) -> None:
    create(database)
    new = spec(labels={"team": "ml"}, scaling={"min_replicas": 2, "max_replicas": 4})
    with database.unit_of_work() as uow:
        updated = uow.endpoints.update_spec(
            "iris-api", new, new_revision_model_ref=None, desired_replicas=2
        )
    assert (updated.revision, updated.model_ref, updated.generation) == (1, "iris:1", 2)
    assert updated.spec == new and updated.desired_replicas == 2
    with database.unit_of_work() as uow:
        assert uow.endpoints.get("iris-api") == updated
        assert [r.number for r in uow.endpoints.revisions("iris-api")] == [1]


def test_update_spec_with_a_new_revision(database: Database) -> None:
    create(database)
    new = spec(model="iris:2")
    with database.unit_of_work() as uow:
        updated = uow.endpoints.update_spec(
            "iris-api", new, new_revision_model_ref="iris:2", desired_replicas=1
        )
    assert (updated.revision, updated.model_ref, updated.generation) == (2, "iris:2", 2)
    with database.unit_of_work() as uow:
        second = uow.endpoints.revision("iris-api", 2)
        first = uow.endpoints.revision("iris-api", 1)
    assert (second.model_ref, second.spec) == ("iris:2", new)
    assert (first.model_ref, first.spec.model) == ("iris:1", "iris:1")


def test_update_spec_refuses_a_spec_of_another_name(database: Database) -> None:
    create(database)
    with pytest.raises(Invalid) as e, database.unit_of_work() as uow:
        uow.endpoints.update_spec(
            "iris-api", spec("other-api"), new_revision_model_ref=None, desired_replicas=1
        )
    assert e.value.field == "name"


def test_set_status(database: Database) -> None:
    clock = FakeClock()
    db = Database(database.engine.url.render_as_string(hide_password=False), clock=clock)
    try:
        created = create(db)
        clock.advance(5)
        with db.unit_of_work() as uow:
            assert uow.endpoints.set_status("iris-api", S.INITIALIZING) is True
            assert uow.endpoints.set_status("iris-api", S.INITIALIZING) is False
            assert uow.endpoints.set_status("iris-api", S.FAILED, "load error") is True
            assert uow.endpoints.set_status("iris-api", S.FAILED, "load error") is False
        clock.advance(5)
        with pytest.raises(Conflict) as e, db.unit_of_work() as uow:
            uow.endpoints.set_status("iris-api", S.RUNNING)  # failed -> running is forbidden
        assert e.value.field == "status"
        with db.unit_of_work() as uow:
            got = uow.endpoints.get("iris-api")
    finally:
        db.dispose()
    assert (got.status, got.status_reason) == (S.FAILED, "load error")
    # written at the last successful change, 5 s after creation; the refused one wrote nothing
    assert got.updated_at == created.updated_at + timedelta(seconds=5)
    assert got.created_at == created.created_at
    assert got.generation == 1  # status is observed state, not spec


def test_set_desired(database: Database) -> None:
    create(database)
    with database.unit_of_work() as uow:
        assert uow.endpoints.set_desired("iris-api", 1) is False
        assert uow.endpoints.set_desired("iris-api", 3) is True
        got = uow.endpoints.get("iris-api")
    assert (got.desired_replicas, got.generation) == (3, 2)
    with pytest.raises(Invalid), database.unit_of_work() as uow:
        uow.endpoints.set_desired("iris-api", -1)


def test_list_filters(database: Database) -> None:
    create(database, "beta-api", labels={"team": "ml"})
    create(database, "alpha-api", labels={"team": "web"})
    create(database, "gamma-svc", labels={"team": "ml", "tier": "gold"})
    with database.unit_of_work() as uow:
        uow.endpoints.set_status("gamma-svc", S.INITIALIZING)

        def names(**kw: object) -> list[str]:
            return [e.name for e in uow.endpoints.list(**kw)]

        assert names() == ["alpha-api", "beta-api", "gamma-svc"]
        assert names(status=S.PENDING) == ["alpha-api", "beta-api"]
        assert names(labels={"team": "ml"}) == ["beta-api", "gamma-svc"]
        assert names(labels={"team": "ml", "tier": "gold"}) == ["gamma-svc"]
        assert names(labels={"team": "ml"}, status=S.PENDING) == ["beta-api"]
        assert names(labels={"tier": "silver"}) == []
        assert names(name_contains="api") == ["alpha-api", "beta-api"]
        assert names(name_contains="ETA-") == ["beta-api"]  # case-insensitive
        # LIKE wildcards in the substring are literal characters
        assert names(name_contains="%") == []
        assert names(name_contains="_") == []
        assert names(name_contains="a_api") == []
        assert names(name_contains="a%a") == []


def test_endpoints_using(database: Database) -> None:
    create(database, "one")
    create(database, "two")
    create(database, "three")
    with database.unit_of_work() as uow:
        uow.endpoints.update_spec(
            "two", spec("two", model="iris:2"), new_revision_model_ref="iris:2", desired_replicas=1
        )
        uow.endpoints.update_spec(
            "three",
            spec("three", model="iris-big"),
            new_revision_model_ref="iris-big:1",
            desired_replicas=1,
        )
        assert uow.endpoints.endpoints_using("iris", 1) == ["one"]
        assert uow.endpoints.endpoints_using("iris", 2) == ["two"]
        assert uow.endpoints.endpoints_using("iris") == ["one", "two"]
        assert uow.endpoints.endpoints_using("iris-big") == ["three"]
        assert uow.endpoints.endpoints_using("wine") == []
        # A rollout in progress: a replica of two's first revision (iris:1) still runs.
        now = datetime.now(UTC)
        old = ReplicaRecord("two-r1-a", "two", 1, ReplicaState.DRAINING, "127.0.0.1", 1, 2, now)
        uow.replicas.upsert(old)
        assert uow.endpoints.endpoints_using("iris", 1) == ["one", "two"]
        assert uow.endpoints.endpoints_using("iris", 2) == ["two"]


def test_delete_removes_revisions_replicas_and_events(database: Database) -> None:
    create(database, "doomed")
    create(database, "kept")
    started = datetime(2026, 1, 1, tzinfo=UTC)
    with database.unit_of_work() as uow:
        uow.endpoints.update_spec(
            "doomed", spec("doomed"), new_revision_model_ref="iris:2", desired_replicas=1
        )
        for name in ("doomed", "kept"):
            uow.replicas.upsert(
                ReplicaRecord(
                    f"{name}-r1", name, 1, ReplicaState.READY, "127.0.0.1", 9000, 1, started
                )
            )
            uow.events.add(name, EventKind.SPEC, "created")
    with database.unit_of_work() as uow:
        uow.endpoints.delete("doomed")
    with database.unit_of_work() as uow:
        assert [e.name for e in uow.endpoints.list()] == ["kept"]
        assert [r.endpoint for r in uow.replicas.list()] == ["kept"]
        assert uow.events.list("doomed") == []
        assert len(uow.events.list("kept")) == 1
        assert uow.session.scalar(select(func.count()).select_from(RevisionRow)) == 1
        with pytest.raises(NotFound):
            uow.endpoints.delete("doomed")


def test_the_database_cascades_revisions_itself(database: Database) -> None:
    """The foreign key is enforced (on SQLite only with PRAGMA foreign_keys=ON)."""
    create(database)
    with database.unit_of_work() as uow:
        uow.session.execute(delete(EndpointRow))
    with database.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(RevisionRow)) == 0
