"""Coordination tests run on the real PostgreSQL server: each test its own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podium.store import Database
from tests.support.db import postgres_url

__all__ = ["postgres_url"]

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    """A migrated store on a fresh PostgreSQL database of its own."""
    db = Database(postgres_url)
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()
