"""Database fixtures for any test that needs a real store.

Use them from a conftest.py:

    from tests.support.db import database, postgres_shared_url, postgres_url, sqlite_url

- `sqlite_url`: a SQLite file URL in the test's tmp_path (the file does not exist yet).
- `postgres_url`: a fresh, empty database `podium_t_<hex>` on the PostgreSQL server at
  $PODIUM_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test), dropped
  after the test; the test is skipped when the server cannot be reached.
- `postgres_shared_url`: the same, but one database for the whole test session (creating a
  database costs a checkpoint: too slow to do for every test).
- `database`: a migrated `Database`, once on SQLite (a new file) and once on PostgreSQL
  (the shared database, emptied after the test; that case is marked `postgres`, deselect
  it with `-m "not postgres"`), disposed after the test. A test that changes the schema
  should use `postgres_url` instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from podium.store import Database

ADMIN_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL is unreachable at {ADMIN_URL}: {e}")
    name = f"podium_t_{secrets.token_hex(6)}"
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def _empty(db: Database) -> None:
    with db.engine.begin() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            conn.exec_driver_sql(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'podium.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    """A fresh database for a module whose tests share servers (several processes)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_shared_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    on_postgres = request.param == "postgres"
    url = request.getfixturevalue("postgres_shared_url" if on_postgres else "sqlite_url")
    db = Database(url)
    db.migrate()
    try:
        yield db
    finally:
        if on_postgres:
            _empty(db)
        db.dispose()


# pg_locks lists the locks of every database on the server, and advisory locks are per
# database: a test that looks for "the" holder must look in its own database, or it finds
# the lock of a test running beside it (xdist) on another database.
IN_THIS_DATABASE = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
