"""What the API reads of the task queue besides one task (issue 13): an endpoint's tasks a
page at a time, a pending task's place in its queue, and the caller's cancel.

Kept apart from `store.tasks` (the queue's own statements: enqueue, claim, finish) so the
queue module stays the dispatcher's; these are the control plane's views of the same rows.
"""

from __future__ import annotations

import builtins
from typing import Any, cast

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import Conflict, NotFound
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store.tables import TaskAttemptRow, TaskRow
from podium.store.task_records import TaskView, task_view

_T = cast(Table, TaskRow.__table__)
_A = cast(Table, TaskAttemptRow.__table__)
_PENDING = TaskStatus.PENDING.value
_RUNNING = TaskStatus.RUNNING.value
CANCELLED_REASON = "cancelled by the caller"


class TaskViews:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def list_page(
        self,
        endpoint: str,
        *,
        status: TaskStatus | None = None,
        before: int | None = None,
        limit: int = 50,
        born_at: float | None = None,
    ) -> builtins.list[TaskView]:
        """The endpoint's tasks, newest first (by `seq`), those below `before` when given;
        only tasks created at or after `born_at` (a re-created endpoint starts empty)."""
        stmt = select(_T).where(_T.c.endpoint == endpoint)
        if status is not None:
            stmt = stmt.where(_T.c.status == status.value)
        if before is not None:
            stmt = stmt.where(_T.c.seq < before)
        if born_at is not None:
            stmt = stmt.where(_T.c.created_at >= born_at)
        rows = self._s.execute(stmt.order_by(_T.c.seq.desc()).limit(limit)).all()
        return [task_view(r._mapping) for r in rows]

    def position(self, task: TaskView) -> int | None:
        """A pending task's place in its endpoint's queue (1 = claimed next: the claim
        takes the highest priority first, then the oldest), None when it is not pending."""
        if task.status is not TaskStatus.PENDING:
            return None
        ahead = self._s.execute(
            select(func.count()).where(
                _T.c.endpoint == task.endpoint,
                _T.c.status == _PENDING,
                or_(
                    _T.c.priority > task.priority,
                    and_(_T.c.priority == task.priority, _T.c.seq < task.seq),
                ),
            )
        ).scalar_one()
        return int(ahead) + 1

    def positions(self, tasks: builtins.list[TaskView]) -> dict[str, int]:
        """`position` of each pending task in `tasks` (a page: at most a few hundred)."""
        return {t.id: p for t in tasks if (p := self.position(t)) is not None}

    def cancel(self, task_id: str) -> TaskView:
        """Cancel a pending or running task (a running one's dispatcher sees the change
        and drops its call; its answer, if it comes, is stale: `TaskRepo.finish` is fenced
        on `running`). A task that has ended is a Conflict naming its status."""
        now = self._clock.now().timestamp()
        row = self._s.execute(
            select(_T.c.status, _T.c.attempts, _T.c.callback_url).where(_T.c.id == task_id)
        ).first()
        if row is None:
            raise NotFound(f"task {task_id!r} not found", field="task_id")
        if row.status not in (_PENDING, _RUNNING):
            raise Conflict(
                f"task {task_id} has ended ({row.status}): it cannot be cancelled", field="status"
            )
        values: dict[str, Any] = {
            "status": TaskStatus.CANCELLED.value,
            "finished_at": now,
            "updated_at": now,
            "lease_owner": None,
            "lease_until": None,
            "error": CANCELLED_REASON,
        }
        if row.callback_url is not None:
            values.update(callback_state="pending", callback_next_at=now)
        done = self._s.execute(
            update(_T)
            .where(_T.c.id == task_id, _T.c.status.in_((_PENDING, _RUNNING)))
            .values(**values)
        )
        if getattr(done, "rowcount", 1) != 1:  # pragma: no cover - it ended in between
            raise Conflict(f"task {task_id} has ended: it cannot be cancelled", field="status")
        # Any attempt still open, whatever status was read: a claim may have come between
        # the read and the write (PostgreSQL), and its attempt row must not stay open.
        self._s.execute(
            update(_A)
            .where(_A.c.task_id == task_id, _A.c.outcome.is_(None))
            .values(
                finished_at=now, outcome=AttemptOutcome.CANCELLED.value, reason=CANCELLED_REASON
            )
        )
        row2 = self._s.execute(select(_T).where(_T.c.id == task_id)).one()
        return task_view(row2._mapping)

    def cancel_endpoint(self, endpoint: str, reason: str) -> int:
        """Cancel every pending and running task of an endpoint (it is being deleted: a
        re-created endpoint of the same name must not run them); returns how many. Their
        callbacks are sent, their running calls dropped by their dispatchers."""
        now = self._clock.now().timestamp()
        live = (_T.c.endpoint == endpoint, _T.c.status.in_((_PENDING, _RUNNING)))
        running = list(
            self._s.execute(
                select(_T.c.id, _T.c.attempts).where(
                    _T.c.endpoint == endpoint, _T.c.status == _RUNNING
                )
            )
        )
        values: dict[str, Any] = {
            "status": TaskStatus.CANCELLED.value,
            "finished_at": now,
            "updated_at": now,
            "lease_owner": None,
            "lease_until": None,
            "error": reason,
        }
        called = self._s.execute(
            update(_T)
            .where(*live, _T.c.callback_url.is_not(None))
            .values(**values, callback_state="pending", callback_next_at=now)
        )
        rest = self._s.execute(update(_T).where(*live).values(**values))
        for r in running:
            self._s.execute(
                update(_A)
                .where(_A.c.task_id == r.id, _A.c.outcome.is_(None))
                .values(finished_at=now, outcome=AttemptOutcome.CANCELLED.value, reason=reason)
            )
        return int(getattr(called, "rowcount", 0) or 0) + int(getattr(rest, "rowcount", 0) or 0)
