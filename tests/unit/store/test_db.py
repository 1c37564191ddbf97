from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from podium.core.errors import Invalid, Unavailable
from podium.store import Database
from podium.store.db import PG_CONNECT_TIMEOUT_S, normalize_url
from podium.store.tables import metadata
from tests.unit.store.helpers import add_model

FRESH = ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("url_fixture", FRESH)
def test_migrate_is_idempotent(url_fixture: str, request: pytest.FixtureRequest) -> None:
    db = Database(request.getfixturevalue(url_fixture))
    try:
        db.migrate()
        db.migrate()
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        db.dispose()
    assert tables == {*metadata.tables, "alembic_version"}
    assert version == "0007"


@pytest.mark.parametrize("url_fixture", FRESH)
def test_concurrent_migrations_run_once(url_fixture: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(url_fixture)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def migrate() -> None:
        db = Database(url)
        try:
            barrier.wait()
            db.migrate()
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            db.dispose()

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_migrated_schema_matches_the_metadata(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_migrate_creates_the_folder_of_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "podium.db"
    db = Database(f"sqlite:///{path}")
    assert not path.parent.exists()  # nothing happens before migrate()
    db.migrate()
    db.dispose()
    assert path.is_file()


def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    with db.unit_of_work() as uow:
        pragma = {
            p: uow.session.execute(text(f"PRAGMA {p}")).scalar_one()
            for p in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    db.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }


def test_unit_of_work_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError), database.unit_of_work() as uow:
        uow.models.add_version(
            "lost", framework=None, sha256="0" * 64, size_bytes=1, files=1, source="s", path="/p"
        )
        raise RuntimeError("boom")
    add_model(database, "kept")
    with database.unit_of_work(read_only=True) as uow:
        assert uow.models.list_names() == ["kept"]


def test_a_read_only_unit_of_work_refuses_writes(database: Database) -> None:
    with (
        pytest.raises(Exception, match=r"(?i)read.?only"),
        database.unit_of_work(read_only=True) as uow,
    ):
        add = uow.models.add_version
        add("nope", framework=None, sha256="0" * 64, size_bytes=1, files=1, source="s", path="/p")
    add_model(database)  # the pooled connection went back writable


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:secret@db:5432/podium", "postgresql+psycopg"),
        ("postgres://u:secret@db/podium", "postgresql+psycopg"),
        ("postgresql+psycopg://u:secret@db/podium", "postgresql+psycopg"),
        ("sqlite:////var/lib/podium.db", "sqlite+pysqlite"),
    ],
)
def test_urls_are_normalized(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_the_password_never_shows() -> None:
    db = Database("postgresql://user:s3cret@127.0.0.1:1/podium")
    assert "s3cret" not in db.url
    assert "s3cret" not in repr(db)
    assert db.url == "postgresql+psycopg://user:***@127.0.0.1:1/podium"


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "mysql://x@y/z", "postgresql+asyncpg://x/y", "nope"]
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as e:
        Database(url)
    assert e.value.field == "database_url"


def test_a_relative_sqlite_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_url("sqlite:///rel/podium.db").database == str(tmp_path / "rel" / "podium.db")


def test_an_unreachable_server_is_unavailable() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/podium")  # nothing listens on port 1
    unavailable = pytest.raises(Unavailable, match="the database is unavailable")
    with unavailable, db.unit_of_work(read_only=True) as uow:
        uow.endpoints.list()
    db.dispose()


def test_a_store_error_never_shows_the_values_it_was_given(sqlite_url: str) -> None:
    """Error text reaches logs: it must not carry row values (payloads, addresses)."""
    from sqlalchemy.exc import DBAPIError

    db = Database(sqlite_url)
    db.migrate()
    try:
        with db.engine.connect() as conn:
            try:
                conn.exec_driver_sql("SELECT nosuchcolumn, ?", ("a-secret-value",))
            except DBAPIError as e:
                assert "a-secret-value" not in str(e)
                assert "hidden due to hide_parameters" in str(e)
            else:
                raise AssertionError("the statement should have failed")
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgresql_connections_have_time_limits(postgres_url: str) -> None:
    """Connecting and every statement are bounded (a blackholed host, a hung server); a
    statement that runs out of time is `Unavailable`, not a raw driver error; a migration
    has no limit."""
    db = Database(postgres_url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            params = conn.connection.dbapi_connection.info.get_parameters()
            assert params["connect_timeout"] == str(PG_CONNECT_TIMEOUT_S)
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1min"
        with db.migration_connection() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
        late = pytest.raises(Unavailable, match="did not answer in time")
        with late, db.unit_of_work() as uow:
            uow.session.execute(text("SET LOCAL statement_timeout = 50"))
            uow.session.execute(text("SELECT pg_sleep(2)"))
    finally:
        db.dispose()
