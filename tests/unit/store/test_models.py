from __future__ import annotations

import threading
from datetime import UTC

import pytest

from podium.core.clock import FakeClock
from podium.core.errors import NotFound
from podium.store import Database
from tests.unit.store.helpers import add_model


def test_versions_count_up_per_name(database: Database) -> None:
    assert [add_model(database, "iris").version for _ in range(3)] == [1, 2, 3]
    assert add_model(database, "wine").version == 1
    with database.unit_of_work() as uow:
        assert uow.models.next_version("iris") == 4
        assert uow.models.next_version("new-model") == 1
        assert uow.models.list_names() == ["iris", "wine"]
        assert [v.version for v in uow.models.versions("iris")] == [1, 2, 3]


def test_a_version_keeps_every_field(database: Database) -> None:
    added = add_model(database, "iris")
    with database.unit_of_work() as uow:
        got = uow.models.get("iris", 1)
    assert got == added
    assert got.ref == "iris:1"
    assert got.size_bytes == 5 * 2**32
    assert got.created_at.tzinfo is UTC


def test_get_without_a_version_is_the_latest(database: Database) -> None:
    add_model(database, "iris")
    add_model(database, "iris")
    with database.unit_of_work() as uow:
        assert uow.models.get("iris").version == 2


def test_not_found_says_what_is_missing(database: Database) -> None:
    add_model(database, "iris")
    with database.unit_of_work() as uow:
        with pytest.raises(NotFound) as e:
            uow.models.get("ghost")
        assert (e.value.message, e.value.field) == ("model 'ghost' not found", "model")
        with pytest.raises(NotFound) as e:
            uow.models.get("iris", 3)
        assert (e.value.message, e.value.field) == ("model 'iris' has no version 3", "model")
        with pytest.raises(NotFound, match="model 'ghost' not found"):
            uow.models.versions("ghost")
        with pytest.raises(NotFound, match="has no version 9"):
            uow.models.delete("iris", 9)


def test_delete_removes_one_version_and_numbers_never_go_back_below_the_max(
    database: Database,
) -> None:
    add_model(database, "iris")
    add_model(database, "iris")
    with database.unit_of_work() as uow:
        deleted = uow.models.delete("iris", 1)
    assert deleted.version == 1
    with database.unit_of_work() as uow:
        assert [v.version for v in uow.models.versions("iris")] == [2]
        assert uow.models.next_version("iris") == 3


def test_find_by_sha(database: Database) -> None:
    add_model(database, "iris", sha256="aa" * 32)
    add_model(database, "iris", sha256="bb" * 32)
    with database.unit_of_work() as uow:
        found = uow.models.find_by_sha("iris", "aa" * 32)
        assert found is not None and found.version == 1
        assert uow.models.find_by_sha("iris", "cc" * 32) is None
        assert uow.models.find_by_sha("wine", "aa" * 32) is None


def test_times_come_from_the_clock_and_return_in_utc(database: Database) -> None:
    clock = FakeClock()
    db = Database(database.engine.url.render_as_string(hide_password=False), clock=clock)
    try:
        added = add_model(db, "iris")
        with db.unit_of_work() as uow:
            got = uow.models.get("iris")
    finally:
        db.dispose()
    assert added.created_at == got.created_at == clock.now()
    assert got.created_at.tzinfo == UTC


def test_concurrent_adds_get_distinct_consecutive_versions(database: Database) -> None:
    n = 8
    barrier = threading.Barrier(n)
    versions: list[int] = []
    errors: list[BaseException] = []

    def add() -> None:
        try:
            barrier.wait()
            versions.append(add_model(database, "iris").version)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=add) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(versions) == list(range(1, n + 1))
