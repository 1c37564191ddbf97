"""Per-name transaction locks that keep concurrent writers of one aggregate in order.

SQLite needs none: every writing unit of work begins `IMMEDIATE`, so writers are already
serialized for the whole database (see `db.py`).

PostgreSQL takes `pg_advisory_xact_lock(space, hashtext(name))`, held until the unit of work
commits or rolls back. Repositories take it before they write a model's versions or an
endpoint's row, revisions or events (and before reading the row they will change), so:

- version numbers are allocated one writer at a time (`max + 1` cannot race);
- event ids of one endpoint become visible in id order, so a follower reading
  `id > after_id` never skips an event committed late with a lower id.

Like any locks they can deadlock if two units of work take them in opposite orders: a unit
of work that writes several aggregates should lock its project first (quota checks), then
write models before endpoints, and endpoints in name order. (PostgreSQL detects a deadlock
and fails one side: `Retryable`.)
"""

from __future__ import annotations

from enum import IntEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session


class LockSpace(IntEnum):
    """First key of the advisory lock: which kind of name is locked."""

    MODEL = 0x504F0001
    ENDPOINT = 0x504F0002
    MIGRATE = 0x504F0003  # one `migrate()` at a time per database
    PROJECT = 0x504F0004  # a project's row, and quota checks that count its usage


def lock_name(session: Session, space: LockSpace, name: str) -> None:
    """Hold the lock on `name` in `space` until the session's transaction ends."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(func.pg_advisory_xact_lock(int(space), func.hashtext(name))))
