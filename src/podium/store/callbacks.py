"""The callback sender's queue (issue 13): tasks whose outcome is still to be POSTed.

A task with a callback URL gets `callback_state = 'pending'` and `callback_next_at = now`
when it ends (`TaskRepo.finish`, `release_expired`, a cancel). The sender (`server/
callbacks.py`) takes the due ones (`take`), which moves their `callback_next_at` past the
time one delivery may take, so a second sender (another server process on the same
PostgreSQL) does not deliver the same callback at once; then it records each delivery
(`record`): delivered, or failed with the next try's time, or given up.
"""

from __future__ import annotations

import builtins
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.store.tables import TaskRow
from podium.store.task_records import TaskView, task_view

_T = cast(Table, TaskRow.__table__)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_CALLBACK_ERROR = 500


class CallbackQueue:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def take(self, limit: int, hold_s: float) -> builtins.list[TaskView]:
        """Up to `limit` tasks whose callback is due, oldest due first; each is held for
        `hold_s` (not due again before then unless `record` says so)."""
        now = self._clock.now().timestamp()
        pick = (
            select(_T.c.seq)
            .where(_T.c.callback_state == PENDING, _T.c.callback_next_at <= now)
            .order_by(_T.c.callback_next_at, _T.c.seq)
            .limit(limit)
        )
        if self._s.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        seqs = list(self._s.execute(pick).scalars())
        if not seqs:
            return []
        self._s.execute(
            update(_T)
            .where(_T.c.seq.in_(seqs), _T.c.callback_state == PENDING)
            .values(callback_next_at=now + hold_s)
        )
        rows = self._s.execute(select(_T).where(_T.c.seq.in_(seqs)).order_by(_T.c.seq)).all()
        return [task_view(r._mapping) for r in rows]

    def record(self, task_id: str, *, error: str | None, retry_in: float | None) -> str:
        """One delivery of the task's callback: `error` None is a success; else it is
        tried again `retry_in` seconds from now, or given up when that is None. Returns
        the new state."""
        retry_at = None if retry_in is None else self._clock.now().timestamp() + retry_in
        values: dict[str, Any] = {"callback_attempts": _T.c.callback_attempts + 1}
        if error is None:
            state = DELIVERED
            values.update(callback_error=None, callback_next_at=None)
        else:
            state = PENDING if retry_at is not None else FAILED
            values.update(callback_error=error[:MAX_CALLBACK_ERROR], callback_next_at=retry_at)
        values["callback_state"] = state
        self._s.execute(
            update(_T).where(_T.c.id == task_id, _T.c.callback_state == PENDING).values(**values)
        )
        return state

    def give_up(self, task_id: str, error: str) -> None:
        """The callback will never be sent (its URL is no longer allowed): failed, with
        no delivery counted."""
        self._s.execute(
            update(_T)
            .where(_T.c.id == task_id, _T.c.callback_state == PENDING)
            .values(
                callback_state=FAILED,
                callback_error=error[:MAX_CALLBACK_ERROR],
                callback_next_at=None,
            )
        )
