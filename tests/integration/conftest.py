"""The integration tests' shared server.

`server` is one real `podium up` (local replica processes) shared by a test module, on
SQLite. A module that sets `DATABASES = ("sqlite", "postgres")` runs each of its tests on
both: a second server on a fresh PostgreSQL database of its own (issue 16: the store and
the flows users rely on behave alike on both). The modules that opt in are the ones whose
behaviour leans on the database: the CLI's user flows, the task queue (`SKIP LOCKED` on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite), batch jobs, request records and access.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.db import fresh_postgres_database
from tests.support.server import ServerProcess, running_server


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kinds = getattr(metafunc.module, "DATABASES", None)
    if kinds and "database_kind" in metafunc.fixturenames:
        metafunc.parametrize("database_kind", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def database_kind(request: pytest.FixtureRequest) -> str:
    """The store of the module's server: "sqlite" unless the module asks for both."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="module")
def database_env(database_kind: str) -> Iterator[dict[str, str]]:
    """The server's environment for `database_kind`: nothing for SQLite (the home's own
    file), `PODIUM_DATABASE_URL` of a fresh PostgreSQL database (dropped afterwards)."""
    if database_kind != "postgres":
        yield {}
        return
    with fresh_postgres_database() as url:
        yield {"PODIUM_DATABASE_URL": url}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_env: dict[str, str]
) -> Iterator[ServerProcess]:
    """One real `podium up` shared by a test module, on `database_kind`'s store."""
    with running_server(tmp_path_factory.mktemp("podium"), **database_env) as s:
        yield s


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path
