"""The durable task queue (issue 13): tasks are rows, claimed under a lease, finished once.

Why a table of our own and not a queue library: the queue must live in the store Podium
already has (SQLite embedded, PostgreSQL beyond one machine), in the same transactions as
the rest of the state, with per-endpoint caps, priorities, idempotency keys and the task's
history (attempts, result, callback) queryable by the API. The libraries that queue on
PostgreSQL (procrastinate, pgqueuer) have no SQLite path, and the ones that run on SQLite
(huey, persist-queue) have no `SKIP LOCKED` claim for several dispatchers; none keeps a
result fenced by attempt. What the queue needs is three statements, written here:

- **claim** (`claim`): per endpoint, the oldest pending tasks of the highest priority,
  at most the dispatcher's free slots for it, become `running` with `attempts + 1`, the
  dispatcher's id as `lease_owner` and `lease_until = now + lease_s`; an attempt row is
  added. On PostgreSQL the candidates are selected `FOR UPDATE SKIP LOCKED`, so dispatchers
  in several processes never take the same task; on SQLite the unit of work is a
  `BEGIN IMMEDIATE` transaction, which serialises claims the same way.
- **finish** (`finish`): the outcome of attempt N is recorded only while the task is still
  `running` attempt N under that owner (fencing): an answer that comes after the lease
  passed to another dispatcher, or after a cancel, changes nothing (its attempt is
  `stale`). So each result is recorded exactly once, though a task may run more than once
  (at-least-once delivery).
- **recover** (`release_expired`): a running task whose lease ran out (its dispatcher died
  or hung) goes back to `pending`, or to `failed` when it used its attempts.

Times are unix seconds from the unit of work's clock (a `FakeClock` in tests).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import Conflict, NotFound
from podium.core.tasks import (
    JOB_ENDED,
    MAX_ERROR_CHARS,
    TASK_FINAL,
    AttemptOutcome,
    JobStatus,
    TaskId,
    TaskStatus,
    new_task_id,
)
from podium.store.tables import JobRow, TaskAttemptRow, TaskRow
from podium.store.task_records import (
    AttemptView,
    Claimed,
    ExpiredLease,
    NewTask,
    Outcome,
    QueueDepth,
    TaskView,
    body_digest,
    task_view,
)

_T = cast(Table, TaskRow.__table__)
_A = cast(Table, TaskAttemptRow.__table__)
_J = cast(Table, JobRow.__table__)
_PENDING = TaskStatus.PENDING.value
_RUNNING = TaskStatus.RUNNING.value
# What `expire` ends once past its TTL (a running task is left to finish first).
_EXPIRABLE = tuple(
    s.value for s in (TaskStatus.PENDING, *sorted(TASK_FINAL)) if s is not TaskStatus.RUNNING
)


RETRY_DELAY_S = 0.5  # a retried task waits this long after its first failure, doubling
RETRY_DELAY_MAX_S = 30.0
PRUNE_AFTER_S = 7 * 86400.0  # an expired task's row (and attempts) is deleted this long after


def retry_delay(attempt: int) -> float:
    """How long a task waits before attempt `attempt + 1` after attempt `attempt` failed
    (0.5 s, 1 s, 2 s, … at most 30 s): a replica that is restarting is not hammered."""
    return min(RETRY_DELAY_MAX_S, RETRY_DELAY_S * 2.0 ** max(0, attempt - 1))


def _due(now: float) -> ColumnElement[bool]:
    """A pending task may be claimed: no retry delay, or its delay has passed (a pending
    task's `lease_until` is the time it may run again)."""
    return or_(_T.c.lease_until.is_(None), _T.c.lease_until <= now)


def _not_in_live_job() -> ColumnElement[bool]:
    """The task is no line of a job that has not ended: a job's lines do not expire before
    their job does (its output needs their results)."""
    live = [s.value for s in JobStatus if s not in JOB_ENDED]
    return or_(
        _T.c.job_id.is_(None), _T.c.job_id.not_in(select(_J.c.id).where(_J.c.status.in_(live)))
    )


class TaskRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def _now(self) -> float:
        return self._clock.now().timestamp()

    # ------------------------------------------------------------------ enqueue

    def enqueue(self, new: NewTask) -> tuple[TaskView, bool]:
        """Add a pending task; returns it and whether it is new. With an idempotency key
        an existing task of the endpoint with that key is returned instead (`False`) when
        its body is the same, and `Conflict` naming `Idempotency-Key` when it differs."""
        digest = body_digest(new.body)
        if new.idempotency_key is not None:
            existing = self._by_key(new.endpoint, new.idempotency_key)
            if existing is not None:
                return self._same_body(existing, digest), False
        try:
            with self._s.begin_nested():
                task_id = self._insert([new], [digest])[0]
        except IntegrityError:  # a concurrent enqueue with the same key won
            existing = (
                self._by_key(new.endpoint, new.idempotency_key)
                if new.idempotency_key is not None
                else None
            )
            if existing is None:
                raise
            return self._same_body(existing, digest), False
        return self.get(task_id), True

    def enqueue_many(self, news: Sequence[NewTask]) -> builtins.list[TaskId]:
        """Add tasks without idempotency keys in one go (a job's lines); returns their ids."""
        return self._insert(news, [body_digest(n.body) for n in news])

    def _insert(self, news: Sequence[NewTask], digests: Sequence[str]) -> builtins.list[TaskId]:
        now = self._now()
        ids = [new_task_id() for _ in news]
        rows = [
            {
                "id": task_id,
                "endpoint": n.endpoint,
                "project": n.project,
                "job_id": n.job_id,
                "line": n.line,
                "method": n.method,
                "path": n.path,
                "headers": [list(h) for h in n.headers],
                "body": n.body,
                "body_sha256": digest,
                "status": (TaskStatus.FAILED if n.error is not None else TaskStatus.PENDING).value,
                "priority": n.priority,
                "attempts": 0,
                "max_attempts": n.max_attempts,
                "lease_s": n.lease_s,
                "lease_owner": None,
                "lease_until": None,
                "created_at": now,
                "started_at": None,
                "finished_at": now if n.error is not None else None,
                "expires_at": now + n.ttl_s,
                "idempotency_key": n.idempotency_key,
                "token_id": n.token_id,
                "result_status": None,
                "result_type": None,
                "result": None,
                "result_file": None,
                "error": None if n.error is None else n.error[:MAX_ERROR_CHARS],
                "callback_url": n.callback_url,
                "callback_state": None,
                "callback_attempts": 0,
                "callback_next_at": None,
                "callback_error": None,
                "updated_at": now,
            }
            for task_id, n, digest in zip(ids, news, digests, strict=True)
        ]
        for start in range(0, len(rows), 500):
            self._s.execute(insert(_T), rows[start : start + 500])
        return ids

    def _by_key(self, endpoint: str, key: str) -> TaskView | None:
        row = self._s.execute(
            select(_T).where(_T.c.endpoint == endpoint, _T.c.idempotency_key == key)
        ).first()
        return None if row is None else task_view(row._mapping)

    def _same_body(self, existing: TaskView, digest: str) -> TaskView:
        stored = self._s.execute(
            select(_T.c.body_sha256).where(_T.c.id == existing.id)
        ).scalar_one()
        if stored != digest:
            raise Conflict(
                f"idempotency key {existing.idempotency_key!r} was used for task {existing.id} "
                "with a different body",
                field="Idempotency-Key",
            )
        return existing

    # ------------------------------------------------------------------ claim and finish

    def claim(self, owner: str, free: Mapping[str, int]) -> builtins.list[Claimed]:
        """Take up to `free[endpoint]` pending tasks of each endpoint for `owner` (module
        docstring): highest priority first, then first in."""
        now = self._now()
        postgres = self._s.get_bind().dialect.name == "postgresql"
        claimed: list[Claimed] = []
        wanted = [endpoint for endpoint, slots in free.items() if slots > 0]
        if not wanted:
            return claimed
        for endpoint in wanted:
            picked = self._pick(endpoint, free[endpoint], now, postgres)
            if not picked:
                continue
            seqs = [p.seq for p in picked]
            since = {p.seq: p.updated_at for p in picked}
            rows = list(
                self._s.execute(
                    update(_T)
                    .where(_T.c.seq.in_(seqs), _T.c.status == _PENDING)
                    .values(
                        status=_RUNNING,
                        attempts=_T.c.attempts + 1,
                        lease_owner=owner,
                        lease_until=now + _T.c.lease_s,
                        started_at=func.coalesce(_T.c.started_at, now),
                        updated_at=now,
                    )
                    .returning(
                        _T.c.id,
                        _T.c.endpoint,
                        _T.c.project,
                        _T.c.method,
                        _T.c.path,
                        _T.c.headers,
                        _T.c.body,
                        _T.c.attempts,
                        _T.c.max_attempts,
                        _T.c.lease_until,
                        _T.c.created_at,
                        _T.c.token_id,
                        _T.c.job_id,
                        _T.c.line,
                        _T.c.seq,
                    )
                )
            )
            rows.sort(key=lambda r: seqs.index(r.seq))
            for r in rows:
                claimed.append(
                    Claimed(
                        id=TaskId(r.id),
                        endpoint=r.endpoint,
                        project=r.project,
                        method=r.method,
                        path=r.path,
                        headers=tuple((str(k), str(v)) for k, v in r.headers),
                        body=r.body,
                        attempt=r.attempts,
                        max_attempts=r.max_attempts,
                        lease_until=r.lease_until,
                        created_at=r.created_at,
                        token_id=r.token_id,
                        job_id=r.job_id,
                        line=r.line,
                        pending_since=since[r.seq],
                    )
                )
            if rows:
                self._s.execute(
                    insert(_A),
                    [
                        {"task_id": r.id, "attempt": r.attempts, "owner": owner, "started_at": now}
                        for r in rows
                    ],
                )
        return claimed

    def _pick(self, endpoint: str, slots: int, now: float, postgres: bool) -> builtins.list[Any]:
        """The `slots` pending tasks of `endpoint` to claim next: highest priority first,
        then first in, skipping those waiting out a retry delay (locked, skipping locked
        ones, on PostgreSQL). One priority at a time, each an index seek in `seq` order
        (`ix_tasks_status_endpoint_priority_seq`): ordering by priority descending and seq
        ascending at once would sort every pending task of the endpoint on every claim."""
        pending = (_T.c.status == _PENDING, _T.c.endpoint == endpoint)
        picked: list[Any] = []
        below: int | None = None
        while len(picked) < slots:
            top = select(func.max(_T.c.priority)).where(*pending)
            if below is not None:
                top = top.where(_T.c.priority < below)
            priority = self._s.execute(top).scalar()
            if priority is None:
                break
            pick = (
                select(_T.c.seq, _T.c.updated_at)
                .where(*pending, _T.c.priority == priority, _due(now))
                .order_by(_T.c.seq)
                .limit(slots - len(picked))
            )
            if postgres:
                pick = pick.with_for_update(skip_locked=True)
            picked.extend(self._s.execute(pick).all())
            below = priority
        return picked

    def finish(self, task_id: str, attempt: int, owner: str, outcome: Outcome) -> TaskStatus | None:
        """Record how attempt `attempt` of a task ended, if `owner` still holds it (module
        docstring); returns the task's new status, or None when the answer is stale."""
        now = self._now()
        reason = None if outcome.reason is None else outcome.reason[:MAX_ERROR_CHARS]
        row = self._s.execute(
            select(_T.c.max_attempts, _T.c.callback_url).where(
                _T.c.id == task_id,
                _T.c.status == _RUNNING,
                _T.c.attempts == attempt,
                _T.c.lease_owner == owner,
            )
        ).first()
        if row is None:
            self._end_attempt(task_id, attempt, now, AttemptOutcome.STALE, outcome, reason)
            return None
        kind = outcome.kind
        values: dict[str, Any] = {"updated_at": now, "lease_owner": None, "lease_until": None}
        if kind is AttemptOutcome.SUCCEEDED:
            new = TaskStatus.SUCCEEDED
            values.update(
                result_status=outcome.status,
                result_type=outcome.result_type,
                result=outcome.result,
                result_file=outcome.result_file,
                error=None,
            )
        elif kind is AttemptOutcome.RETRY and attempt < row.max_attempts:
            new = TaskStatus.PENDING
            values["lease_until"] = now + retry_delay(attempt)  # not claimed before then
        elif kind is AttemptOutcome.RETRY:
            new = TaskStatus.FAILED  # dead-lettered: every attempt's reason is in attempts
            values.update(
                result_status=outcome.status,
                error=f"failed {attempt} times (dead-lettered); last: {reason}"[:MAX_ERROR_CHARS],
            )
        elif kind is AttemptOutcome.FAILED:
            new = TaskStatus.FAILED
            values.update(
                result_status=outcome.status,
                result_type=outcome.result_type,
                result=outcome.result,
                error=reason,
            )
        else:
            raise ValueError(f"finish does not take outcome {kind.value}")
        values["status"] = new.value
        if new is not TaskStatus.PENDING:
            values["finished_at"] = now
            if row.callback_url is not None:
                values.update(callback_state="pending", callback_next_at=now)
        done = self._s.execute(
            update(_T)
            .where(
                _T.c.id == task_id,
                _T.c.status == _RUNNING,
                _T.c.attempts == attempt,
                _T.c.lease_owner == owner,
            )
            .values(**values)
        )
        if (
            getattr(done, "rowcount", 1) != 1
        ):  # pragma: no cover - the select above holds the write lock
            self._end_attempt(task_id, attempt, now, AttemptOutcome.STALE, outcome, reason)
            return None
        self._end_attempt(task_id, attempt, now, kind, outcome, reason)
        return new

    def _end_attempt(
        self,
        task_id: str,
        attempt: int,
        now: float,
        kind: AttemptOutcome,
        outcome: Outcome,
        reason: str | None,
    ) -> None:
        self._s.execute(
            update(_A)
            .where(_A.c.task_id == task_id, _A.c.attempt == attempt, _A.c.outcome.is_(None))
            .values(
                finished_at=now,
                outcome=kind.value,
                status=outcome.status,
                reason=reason,
                replica_id=outcome.replica_id,
            )
        )

    def release_expired(self, limit: int = 500) -> int:
        """Running tasks whose lease ran out go back to pending (or fail when they used
        their attempts); returns how many."""
        return sum(self.release(lease) for lease in self.expired_leases(limit))

    def expired_leases(self, limit: int = 500) -> builtins.list[ExpiredLease]:
        """Running tasks whose lease ran out, at most `limit` (locked, skipping those
        another server is sweeping, on PostgreSQL)."""
        pick = (
            select(_T.c.id, _T.c.attempts, _T.c.max_attempts, _T.c.callback_url)
            .where(_T.c.status == _RUNNING, _T.c.lease_until < self._now())
            .limit(limit)
        )
        if self._s.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        return [
            ExpiredLease(r.id, r.attempts, r.max_attempts, r.callback_url)
            for r in self._s.execute(pick)
        ]

    def release(self, lease: ExpiredLease) -> bool:
        """Give one expired lease's task back (or fail it when it used its attempts), only
        if that attempt still runs past its lease: a task another sweep gave back and
        another dispatcher claimed since (a later attempt, a new lease) is left alone.
        Returns whether it changed."""
        now = self._now()
        reason = "its lease ran out: the dispatcher running it stopped or hung"
        retry = lease.attempts < lease.max_attempts
        values: dict[str, Any] = {
            "status": _PENDING if retry else TaskStatus.FAILED.value,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
        }
        if not retry:
            values.update(
                finished_at=now,
                error=f"failed {lease.attempts} times (dead-lettered); last: {reason}",
            )
            if lease.callback_url is not None:
                values.update(callback_state="pending", callback_next_at=now)
        done = self._s.execute(
            update(_T)
            .where(
                _T.c.id == lease.task_id,
                _T.c.status == _RUNNING,
                _T.c.attempts == lease.attempts,
                _T.c.lease_until < now,
            )
            .values(**values)
        )
        if getattr(done, "rowcount", 1) != 1:
            return False
        self._s.execute(
            update(_A)
            .where(
                _A.c.task_id == lease.task_id,
                _A.c.attempt == lease.attempts,
                _A.c.outcome.is_(None),
            )
            .values(finished_at=now, outcome=AttemptOutcome.LEASE_EXPIRED.value, reason=reason)
        )
        return True

    def give_back(self, owner: str) -> int:
        """The tasks `owner` runs go back to the queue at once (its server is stopping and
        will not record them): nobody waits for their leases to run out. The attempt
        stays counted, its outcome `released`. Returns how many."""
        now = self._now()
        ids = list(
            self._s.execute(
                select(_T.c.id).where(_T.c.status == _RUNNING, _T.c.lease_owner == owner)
            ).scalars()
        )
        if not ids:
            return 0
        self._s.execute(
            update(_T)
            .where(_T.c.id.in_(ids), _T.c.status == _RUNNING, _T.c.lease_owner == owner)
            .values(status=_PENDING, lease_owner=None, lease_until=None, updated_at=now)
        )
        self._s.execute(
            update(_A)
            .where(_A.c.task_id.in_(ids), _A.c.owner == owner, _A.c.outcome.is_(None))
            .values(
                finished_at=now,
                outcome=AttemptOutcome.RELEASED.value,
                reason="its server stopped: the task went back to the queue",
            )
        )
        return len(ids)

    # ------------------------------------------- expire (a caller's cancel: store.task_views)

    def expire(self, limit: int = 500) -> tuple[int, builtins.list[str]]:
        """Pending and finished tasks past `expires_at` become `expired`, their results
        deleted; returns how many, and the result files to delete (the caller deletes them:
        the file store is not this repository's). A running task expires once it ends."""
        now = self._now()
        rows = self._s.execute(
            select(_T.c.id, _T.c.result_file)
            .where(_T.c.expires_at < now, _T.c.status.in_(_EXPIRABLE), _not_in_live_job())
            .limit(limit)
        ).all()
        files: list[str] = []
        for r in rows:
            done = self._s.execute(
                update(_T)
                .where(_T.c.id == r.id, _T.c.status.in_(_EXPIRABLE))
                .values(
                    status=TaskStatus.EXPIRED.value,
                    body=b"",  # the request is not kept past its TTL either
                    result=None,
                    result_file=None,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            if getattr(done, "rowcount", 1) == 1 and r.result_file is not None:
                files.append(r.result_file)
        return len(rows), files

    def prune(self, limit: int = 500) -> int:
        """Delete tasks expired for `PRUNE_AFTER_S` (and their attempts), at most `limit`:
        the table does not grow for ever, and an idempotency key can be used again."""
        cutoff = self._now() - PRUNE_AFTER_S
        ids = list(
            self._s.execute(
                select(_T.c.id)
                .where(_T.c.status == TaskStatus.EXPIRED.value, _T.c.expires_at < cutoff)
                .limit(limit)
            ).scalars()
        )
        if ids:
            self._s.execute(delete(_A).where(_A.c.task_id.in_(ids)))
            self._s.execute(delete(_T).where(_T.c.id.in_(ids)))
        return len(ids)

    def still_running(self, owner: str, held: Sequence[tuple[str, int]]) -> builtins.set[str]:
        """Of the tasks `owner` runs (id, attempt), those still `running` that attempt under
        it: the others were cancelled, or their lease passed to another dispatcher."""
        if not held:
            return set()
        ids = [task_id for task_id, _ in held]
        attempts = dict(held)
        rows = self._s.execute(
            select(_T.c.id, _T.c.attempts).where(
                _T.c.id.in_(ids), _T.c.status == _RUNNING, _T.c.lease_owner == owner
            )
        ).all()
        return {r.id for r in rows if attempts.get(r.id) == r.attempts}

    # ------------------------------------------------------------------ reading

    def get(self, task_id: str) -> TaskView:
        row = self._s.execute(select(_T).where(_T.c.id == task_id)).first()
        if row is None:
            raise NotFound(f"task {task_id!r} not found", field="task_id")
        return task_view(row._mapping)

    def attempts(self, task_id: str) -> builtins.list[AttemptView]:
        rows = self._s.execute(
            select(_A).where(_A.c.task_id == task_id).order_by(_A.c.attempt, _A.c.id)
        ).all()
        return [
            AttemptView(
                attempt=r.attempt,
                owner=r.owner,
                started_at=r.started_at,
                finished_at=r.finished_at,
                outcome=None if r.outcome is None else AttemptOutcome(r.outcome),
                status=r.status,
                reason=r.reason,
                replica_id=r.replica_id,
            )
            for r in rows
        ]

    def has_key(self, endpoint: str, key: str) -> bool:
        """Whether the endpoint has a task with this idempotency key."""
        return self._by_key(endpoint, key) is not None

    def pending_count(self, endpoint: str) -> int:
        """An endpoint's pending tasks (the gateway refuses more than `max_pending`)."""
        return int(
            self._s.execute(
                select(func.count()).where(_T.c.status == _PENDING, _T.c.endpoint == endpoint)
            ).scalar_one()
        )

    def depth(self) -> dict[str, QueueDepth]:
        """Per endpoint with pending or running tasks: how many pending (and the oldest's
        creation) and running."""
        rows = self._s.execute(
            select(_T.c.endpoint, _T.c.status, func.count(), func.min(_T.c.created_at))
            .where(_T.c.status.in_((_PENDING, _RUNNING)))
            .group_by(_T.c.endpoint, _T.c.status)
        ).all()
        out: dict[str, QueueDepth] = {}
        for endpoint, status, count, oldest in rows:
            d = out.get(endpoint, QueueDepth(0, 0.0, 0))
            if status == _PENDING:
                d = QueueDepth(count, oldest, d.running)
            else:
                d = QueueDepth(d.pending, d.oldest_created_at, count)
            out[endpoint] = d
        return out
