from collections.abc import Iterator

import pytest

from podium.core.clock import FakeClock
from podium.store import Database
from tests.support.db import database, postgres_shared_url, postgres_url, sqlite_url

__all__ = ["database", "postgres_shared_url", "postgres_url", "sqlite_url"]


@pytest.fixture
def clocked(database: Database) -> Iterator[tuple[Database, FakeClock]]:
    """The migrated `database` (no password on this machine's servers) on a fake clock."""
    clock = FakeClock()
    db = Database(database.url, clock=clock)
    yield db, clock
    db.dispose()
