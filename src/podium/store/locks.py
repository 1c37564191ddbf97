"""Per-name transaction locks that keep concurrent writers of one aggregate in order.

SQLite needs none: every writing unit of work begins `IMMEDIATE`, so writers are already
serialized for the whole database (see `db.py`).

PostgreSQL takes `pg_advisory_xact_lock(space, hashtext(name))`, held until the unit of work
commits or rolls back. Repositories take it before they write a model's versions or an
endpoint's row, revisions or events (and before reading the row they will change), so:

- version numbers are allocated one writer at a time (`max + 1` cannot race);
- event ids of one endpoint become visible in id order, so a follower reading
  `id > after_id` never skips an event committed late with a lower id.

A project's lock is also taken *shared* by a unit of work that adds to the project (an
endpoint, a model version: `ProjectRepo.hold`), and exclusively by one that deletes or
changes the project or counts its usage for a quota check: so a project cannot be deleted
while something is being added to it, and adding to it does not serialize other adders.

Like any locks they can deadlock if two units of work take them in opposite orders. The
order, which the code follows: a project's lock first (the API's quota check `check_quota`
and the autoscaler's `_fits` run before any endpoint write; `EndpointRepo.create` and
`ModelRepo.add_version` hold the project before they lock the new name), then models, then
endpoints in name order. A unit of work that needs a project's lock exclusively takes it
before holding it shared, never after (two holders both upgrading would deadlock). Reading a
row takes no lock. (PostgreSQL detects a deadlock and
fails one side: `Retryable`.)
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
    CONTROLLER = 0x504F0005  # the controller lease: a session lock, held while leading


def lock_name(session: Session, space: LockSpace, name: str, *, shared: bool = False) -> None:
    """Hold the lock on `name` in `space` until the session's transaction ends (`shared`:
    with other shared holders, not with an exclusive one)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    take = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
    session.execute(select(take(int(space), func.hashtext(name))))
