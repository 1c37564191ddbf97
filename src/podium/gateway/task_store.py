"""The gateway's seam to the durable task queue (issue 13): what the async route and the
task dispatcher ask of the store, one unit of work per call.

Every method blocks (SQLite does): callers on the event loop run them through
`asyncio.to_thread`, never on the path of a synchronous invocation. `DatabaseTaskStore`
is the real one over a `store.Database`; tests give it a real SQLite database, and another
store (a fake, a remote queue) only has to provide these methods.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from podium.core.errors import RateLimited
from podium.core.tasks import TaskStatus
from podium.store.db import Database, UnitOfWork
from podium.store.task_records import Claimed, NewTask, Outcome, TaskView


class TaskStore(Protocol):
    """The queue as the gateway uses it (see `store.tasks.TaskRepo` for each rule)."""

    def enqueue(self, new: NewTask, max_pending: int) -> tuple[TaskView, bool]: ...

    def claim(self, owner: str, free: Mapping[str, int]) -> list[Claimed]: ...

    def finish(
        self, task_id: str, attempt: int, owner: str, outcome: Outcome
    ) -> TaskStatus | None: ...

    def still_running(self, owner: str, held: Sequence[tuple[str, int]]) -> set[str]: ...

    def sweep(self, limit: int) -> tuple[int, int, list[str]]: ...

    def give_back(self, owner: str) -> int: ...


class DatabaseTaskStore:
    """`TaskStore` over the server's `Database` (SQLite or PostgreSQL).

    On SQLite its writes take turns on a lock of this process first: SQLite has one writer
    at a time, and threads that meet its lock wait in SQLite's busy handler, which sleeps
    1, 2, 5, 10 … ms between tries. Dozens of enqueues and finishes at once (the intake and
    the dispatcher each call from their own thread) then spent most of their time asleep;
    a Python lock wakes the next writer as soon as the last one commits. PostgreSQL takes
    concurrent writers as they come."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._turns = threading.Lock() if db.dialect == "sqlite" else contextlib.nullcontext()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[UnitOfWork]:
        with self._turns, self._db.unit_of_work() as uow:
            yield uow

    def enqueue(self, new: NewTask, max_pending: int) -> tuple[TaskView, bool]:
        """Add the task (or find it again by its idempotency key); `RateLimited` when the
        endpoint has `max_pending` pending tasks already (a replay is never refused)."""
        with self._writing() as uow:
            if new.idempotency_key is None or not uow.tasks.has_key(
                new.endpoint, new.idempotency_key
            ):
                pending = uow.tasks.pending_count(new.endpoint)
                if pending >= max_pending:
                    raise RateLimited(
                        f"endpoint {new.endpoint!r} has {pending} pending tasks, its limit "
                        f"(tasks.max_pending); retry once some have run",
                        retry_after=5.0,
                        field="tasks.max_pending",
                    )
            return uow.tasks.enqueue(new)

    def claim(self, owner: str, free: Mapping[str, int]) -> list[Claimed]:
        with self._writing() as uow:
            return uow.tasks.claim(owner, free)

    def finish(self, task_id: str, attempt: int, owner: str, outcome: Outcome) -> TaskStatus | None:
        with self._writing() as uow:
            return uow.tasks.finish(task_id, attempt, owner, outcome)

    def still_running(self, owner: str, held: Sequence[tuple[str, int]]) -> set[str]:
        with self._db.unit_of_work(read_only=True) as uow:
            return uow.tasks.still_running(owner, held)

    def sweep(self, limit: int) -> tuple[int, int, list[str]]:
        """Expired leases back to pending (or failed), then tasks past their TTL expired:
        (released, expired, result files to delete)."""
        with self._writing() as uow:
            released = uow.tasks.release_expired(limit)
        with self._writing() as uow:
            expired, files = uow.tasks.expire(limit)
        with self._writing() as uow:
            uow.tasks.prune(limit)
        return released, expired, files

    def give_back(self, owner: str) -> int:
        """The tasks `owner` runs back to the queue (a stopping dispatcher's)."""
        with self._writing() as uow:
            return uow.tasks.give_back(owner)
