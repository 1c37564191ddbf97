"""Listing endpoints parses each stored spec once (store/spec_cache.py), and never hands
out a spec older than the row: an update, a delete and re-create (even within one tick
of the clock) and a change written through another `Database` (another server) are seen
by the next list, on SQLite and PostgreSQL."""

from __future__ import annotations

from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus
from podium.store import Database
from podium.store.spec_cache import SpecCache
from tests.unit.store.helpers import spec

S = EndpointStatus


def create(db: Database, name: str = "iris-api", **changes: object) -> None:
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec(name, **changes), model_ref="iris:1", status=S.PENDING, desired_replicas=1
        )


def listed(db: Database) -> dict[str, object]:
    with db.unit_of_work(read_only=True) as uow:
        return {r.name: r.spec for r in uow.endpoints.list()}


def test_a_list_parses_each_spec_once_and_shares_it(database: Database) -> None:
    create(database, "ep-a")
    create(database, "ep-b", timeout_s=9.0)
    first = listed(database)
    again = listed(database)
    assert first == {"ep-a": spec("ep-a"), "ep-b": spec("ep-b", timeout_s=9.0)}
    assert first["ep-a"] is again["ep-a"] and first["ep-b"] is again["ep-b"]
    with database.unit_of_work(read_only=True) as uow:
        assert uow.endpoints.list(status=S.PENDING, name_contains="ep-b")[0].spec is first["ep-b"]


def test_an_updated_spec_is_listed_at_once(database: Database) -> None:
    create(database)
    listed(database)
    with database.unit_of_work() as uow:
        uow.endpoints.update_spec(
            "iris-api", spec(timeout_s=5.0), new_revision_model_ref=None, desired_replicas=1
        )
    assert listed(database)["iris-api"] == spec(timeout_s=5.0)


def test_a_recreated_endpoint_is_listed_with_its_new_spec_within_one_clock_tick(
    database: Database,
) -> None:
    db = Database(database.url, clock=FakeClock())  # created_at is the same both times
    try:
        create(db)
        assert listed(db)["iris-api"] == spec()
        with db.unit_of_work() as uow:
            uow.endpoints.delete("iris-api")
        create(db, timeout_s=3.0)
        assert listed(db)["iris-api"] == spec(timeout_s=3.0)
    finally:
        db.dispose()


def test_a_change_written_by_another_server_is_listed(database: Database) -> None:
    other = Database(database.url)
    try:
        create(database)
        assert listed(database)["iris-api"] == spec()
        with other.unit_of_work() as uow:  # another process: this cache is not told
            uow.endpoints.update_spec(
                "iris-api", spec(timeout_s=4.0), new_revision_model_ref=None, desired_replicas=2
            )
        assert listed(database)["iris-api"] == spec(timeout_s=4.0)  # the generation moved
    finally:
        other.dispose()


def test_the_cache_is_bounded_and_starts_over() -> None:
    cache = SpecCache(limit=2)
    at = FakeClock().now()
    cache.put(("ep-a", at, 1), spec("ep-a"))
    cache.put(("ep-a", at, 2), spec("ep-a", timeout_s=2.0))  # one entry per endpoint
    cache.put(("ep-b", at, 1), spec("ep-b"))
    assert len(cache) == 2 and cache.get(("ep-a", at, 1)) is None
    assert cache.get(("ep-a", at, 2)) == spec("ep-a", timeout_s=2.0)
    cache.put(("ep-c", at, 1), spec("ep-c"))  # past the limit: starts over
    assert len(cache) == 1 and cache.get(("ep-c", at, 1)) == spec("ep-c")
    cache.forget("ep-c")
    assert cache.get(("ep-c", at, 1)) is None


def test_a_rolled_back_spec_never_stands_for_another_servers_change(database: Database) -> None:
    other = Database(database.url)
    try:
        create(database)
        listed(database)
        try:
            with database.unit_of_work() as uow:  # a write that reads its own spec back
                uow.endpoints.update_spec(
                    "iris-api", spec(timeout_s=5.0), new_revision_model_ref=None, desired_replicas=1
                )
                assert uow.endpoints.list()[0].spec == spec(timeout_s=5.0)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        with other.unit_of_work() as uow:  # the same next generation, another spec
            uow.endpoints.update_spec(
                "iris-api", spec(timeout_s=6.0), new_revision_model_ref=None, desired_replicas=1
            )
        assert listed(database)["iris-api"] == spec(timeout_s=6.0)
    finally:
        other.dispose()


def test_a_spec_json_is_dumped_once_and_handed_out_only_for_its_own_spec() -> None:
    """The list's JSON of a spec (`SpecCache.json`) is kept with the parsed spec it was
    dumped from, and given for nothing else: another identity or another spec object
    (a newer one, one a writing unit of work read) is dumped afresh."""
    cache = SpecCache()
    at = FakeClock().now()
    old, new = spec("ep-a"), spec("ep-a", timeout_s=2.0)
    cache.put(("ep-a", at, 1), old)
    first = cache.json(("ep-a", at, 1), old)
    assert first == old.model_dump_json().encode()
    assert cache.json(("ep-a", at, 1), old) is first  # dumped once
    assert cache.json(("ep-a", at, 1), new) == new.model_dump_json().encode()
    assert cache.json(("ep-a", at, 2), new) == new.model_dump_json().encode()
    cache.put(("ep-a", at, 2), new)
    assert cache.json(("ep-a", at, 2), new) == new.model_dump_json().encode()
    assert cache.json(("ep-a", at, 1), old) is not first  # its entry is gone
    cache.forget("ep-a")
    assert cache.json(("ep-a", at, 2), new) == new.model_dump_json().encode()


def test_the_spec_json_of_a_record_is_never_an_older_specs(database: Database) -> None:
    create(database)
    with database.unit_of_work(read_only=True) as uow:
        (listed_rec,) = uow.endpoints.list()
        assert uow.endpoints.spec_json(listed_rec) == spec().model_dump_json().encode()
    with database.unit_of_work() as uow:  # the answer to a change reads its own spec
        rec = uow.endpoints.update_spec(
            "iris-api", spec(timeout_s=5.0), new_revision_model_ref=None, desired_replicas=1
        )
        assert uow.endpoints.spec_json(rec) == spec(timeout_s=5.0).model_dump_json().encode()
    with database.unit_of_work(read_only=True) as uow:
        assert uow.endpoints.spec_json(listed_rec) == spec().model_dump_json().encode()
        (rec,) = uow.endpoints.list()
        assert uow.endpoints.spec_json(rec) == spec(timeout_s=5.0).model_dump_json().encode()
