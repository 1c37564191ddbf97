"""Coordination tests with real processes on the real PostgreSQL server: each test its own
database (the `pg` fixture of the unit coordination tests)."""

from __future__ import annotations

from tests.support.db import postgres_url
from tests.unit.coordination.conftest import pg

__all__ = ["pg", "postgres_url"]
