from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from podium.core.errors import Invalid
from podium.core.phases import EventKind, ReplicaState
from podium.store import Database
from podium.store.records import ReplicaRecord

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def replica(replica_id: str, endpoint: str = "iris-api", **changes: object) -> ReplicaRecord:
    record = ReplicaRecord(
        replica_id=replica_id,
        endpoint=endpoint,
        revision=1,
        state=ReplicaState.STARTING,
        host="127.0.0.1",
        port=9001,
        pid=4242,
        started_at=T0,
        log_path=f"/logs/{replica_id}.log",
    )
    return replace(record, **changes)


def test_replica_upsert_inserts_then_replaces(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.replicas.upsert(replica("a"))
        uow.replicas.upsert(replica("b", endpoint="wine-api", pid=None))
    ready = replica("a", state=ReplicaState.READY, restarts=2, port=9002)
    with database.unit_of_work() as uow:
        uow.replicas.upsert(ready)
        assert uow.replicas.list("iris-api") == [ready]  # read back within the same session
    with database.unit_of_work() as uow:
        assert uow.replicas.list() == [ready, replica("b", endpoint="wine-api", pid=None)]
        assert uow.replicas.list("ghost") == []


def test_replica_times_are_stored_in_utc(database: Database) -> None:
    east = timezone(timedelta(hours=5))
    with database.unit_of_work() as uow:
        uow.replicas.upsert(replica("a", started_at=T0.astimezone(east)))
    with database.unit_of_work() as uow:
        (got,) = uow.replicas.list()
    assert got.started_at == T0
    assert got.started_at.tzinfo == UTC


def test_a_naive_datetime_is_refused(database: Database) -> None:
    with pytest.raises(Exception, match="naive"), database.unit_of_work() as uow:
        uow.replicas.upsert(replica("a", started_at=T0.replace(tzinfo=None)))


def test_replica_delete_is_quiet_when_absent(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.replicas.upsert(replica("a"))
        uow.replicas.delete("a")
        uow.replicas.delete("a")
        assert uow.replicas.list() == []


def test_events_come_back_in_order_after_an_id(database: Database) -> None:
    with database.unit_of_work() as uow:
        first = uow.events.add("iris-api", EventKind.SPEC, "created", {"by": "me"})
        uow.events.add("wine-api", EventKind.SPEC, "created")
        second = uow.events.add("iris-api", EventKind.STATUS, "pending -> running")
        third = uow.events.add("iris-api", EventKind.SCALED, "1 -> 2", {"from": 1, "to": 2})
    assert first.id < second.id < third.id
    with database.unit_of_work() as uow:
        all_ = uow.events.list("iris-api")
        assert all_ == [first, second, third]
        assert uow.events.list("iris-api", after_id=first.id) == [second, third]
        assert uow.events.list("iris-api", after_id=first.id, limit=1) == [second]
        assert uow.events.list("iris-api", after_id=third.id) == []
        # the newest page, still oldest first (a page opening on a long history)
        assert uow.events.list("iris-api", limit=2, newest=True) == [second, third]
        assert uow.events.list("iris-api", after_id=second.id, newest=True) == [third]
    assert first.data == {"by": "me"} and second.data == {}
    assert first.kind is EventKind.SPEC
    assert all(e.at.tzinfo is not None for e in all_)


def test_event_ids_are_never_reused(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.events.add("iris-api", EventKind.SPEC, "one")
        last = uow.events.add("iris-api", EventKind.SPEC, "two")
        uow.events.delete_for("iris-api")
        assert uow.events.list("iris-api") == []
    with database.unit_of_work() as uow:
        assert uow.events.add("iris-api", EventKind.SPEC, "again").id > last.id


def test_event_page_size_is_bounded(database: Database) -> None:
    with pytest.raises(Invalid) as e, database.unit_of_work() as uow:
        uow.events.list("iris-api", limit=0)
    assert e.value.field == "limit"
