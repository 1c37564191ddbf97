"""Persistence: SQLAlchemy 2 + Alembic on SQLite (default, WAL) or PostgreSQL (psycopg 3).

`Database(url)` owns the engine and the migrations; `Database.unit_of_work()` yields a
`UnitOfWork` whose repositories (`models`, `endpoints`, `replicas`, `events`, `memory`) share one
transaction and return plain `records`, never ORM rows.

This package stores and retrieves; it enforces integrity (unique names, consecutive
version and revision numbers, allowed status transitions via `core.phases`) and nothing
more. Business rules live in `api` and `control`. Imports only `podium.core`.
"""

from podium.store.db import Database, UnitOfWork

__all__ = ["Database", "UnitOfWork"]
