"""Batch jobs (issue 13): the `jobs` rows, and what the job runner asks of a job's tasks.

A job's lines are tasks of the durable queue (`tasks.job_id`, `tasks.line`), so the job
keeps no per-line state of its own: its progress is a GROUP BY over its tasks, its next
line to enqueue is their highest line + 1. That is what lets a restarted server's runner
carry on where it stopped without running a line twice.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import Conflict, NotFound
from podium.core.tasks import (
    JOB_ENDED,
    MAX_ERROR_CHARS,
    AttemptOutcome,
    JobStatus,
    TaskStatus,
    check_job_transition,
    new_job_id,
)
from podium.store.tables import JobRow, TaskAttemptRow, TaskRow

_J = cast(Table, JobRow.__table__)
_T = cast(Table, TaskRow.__table__)
_A = cast(Table, TaskAttemptRow.__table__)
PODIUM, OPENAI = "podium", "openai"  # jobs.kind


@dataclass(frozen=True, slots=True)
class NewJob:
    project: str
    endpoint: str | None  # the endpoint's key; None: named per line (an OpenAI batch)
    input_file: str
    path: str = "/"
    method: str = "POST"
    concurrency: int = 8
    kind: str = PODIUM
    token_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    project: str
    endpoint: str | None
    kind: str
    status: JobStatus
    method: str
    path: str
    concurrency: int
    input_file: str
    output_file: str | None
    error_file: str | None
    lines_total: int
    error: str | None
    token_id: str | None
    labels: dict[str, str]
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class Progress:
    """A job's tasks by status (lines not enqueued yet are in none)."""

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0

    @property
    def enqueued(self) -> int:
        return self.unfinished + self.ended

    @property
    def unfinished(self) -> int:
        return self.pending + self.running

    @property
    def ended(self) -> int:
        return self.succeeded + self.failed + self.cancelled + self.expired


@dataclass(frozen=True, slots=True)
class LineResult:
    """What one line's task ended with (for the output file)."""

    line: int
    status: TaskStatus
    result_status: int | None
    result_type: str | None
    result: bytes | None
    result_file: str | None
    error: str | None
    task_id: str


class JobRepo:
    """Jobs (UnitOfWork attribute `jobs`)."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def create(self, new: NewJob) -> JobView:
        now = self._now()
        values: dict[str, Any] = {
            "id": new_job_id(),
            "project": new.project,
            "endpoint": new.endpoint,
            "kind": new.kind,
            "status": JobStatus.VALIDATING.value,
            "method": new.method,
            "path": new.path,
            "concurrency": new.concurrency,
            "input_file": new.input_file,
            "output_file": None,
            "error_file": None,
            "lines_total": 0,
            "error": None,
            "token_id": new.token_id,
            "labels": dict(new.labels),
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "updated_at": now,
        }
        self._s.execute(insert(_J).values(**values))
        return _view(values)

    def get(self, job_id: str) -> JobView:
        row = self._s.execute(select(_J).where(_J.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id!r} not found", field="job_id")
        return _view(row._mapping)

    def list(
        self,
        projects: frozenset[str] | None = None,
        endpoint: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        before: float | None = None,
    ) -> builtins.list[JobView]:
        """Newest first; `projects` None: every project."""
        query = select(_J).order_by(_J.c.created_at.desc(), _J.c.id.desc()).limit(limit)
        if projects is not None:
            query = query.where(_J.c.project.in_(sorted(projects)))
        if endpoint is not None:
            query = query.where(_J.c.endpoint == endpoint)
        if kind is not None:
            query = query.where(_J.c.kind == kind)
        if before is not None:
            query = query.where(_J.c.created_at < before)
        return [_view(r._mapping) for r in self._s.execute(query).all()]

    def active(self) -> builtins.list[JobView]:
        """Jobs the runner has work for (not ended), oldest first."""
        query = (
            select(_J)
            .where(_J.c.status.not_in([s.value for s in JOB_ENDED]))
            .order_by(_J.c.created_at, _J.c.id)
        )
        return [_view(r._mapping) for r in self._s.execute(query).all()]

    def set_status(
        self,
        job_id: str,
        new: JobStatus,
        *,
        error: str | None = None,
        lines_total: int | None = None,
        output_file: str | None = None,
        error_file: str | None = None,
    ) -> JobView:
        """Move the job to `new` (`Conflict` naming `status` when the table forbids it)."""
        job = self.get(job_id)
        check_job_transition(job.status, new)
        now = self._now()
        values: dict[str, Any] = {"status": new.value, "updated_at": now}
        if new is JobStatus.IN_PROGRESS:
            values["started_at"] = now
        if new in JOB_ENDED:
            values["finished_at"] = now
        if error is not None:
            values["error"] = error[:MAX_ERROR_CHARS]
        if lines_total is not None:
            values["lines_total"] = lines_total
        if output_file is not None:
            values["output_file"] = output_file
        if error_file is not None:
            values["error_file"] = error_file
        done = self._s.execute(
            update(_J).where(_J.c.id == job_id, _J.c.status == job.status.value).values(**values)
        )
        if getattr(done, "rowcount", 1) != 1:  # another writer moved it meanwhile
            raise Conflict(
                f"job {job_id!r} changed while being moved to {new.value}", field="status"
            )
        return self.get(job_id)

    def progress(self, job_id: str) -> Progress:
        """Its tasks counted by status, in one GROUP BY."""
        rows = self._s.execute(
            select(_T.c.status, func.count()).where(_T.c.job_id == job_id).group_by(_T.c.status)
        ).all()
        counts = {TaskStatus(status).value: int(n) for status, n in rows}
        return Progress(**counts)

    def hold(self, job_id: str) -> int:
        """Lock the job's row for this transaction (PostgreSQL `FOR UPDATE`; SQLite's
        units of work hold the write lock already) and return its next line: two runners
        (two servers on one PostgreSQL) never enqueue the same lines."""
        self._s.execute(select(_J.c.id).where(_J.c.id == job_id).with_for_update()).first()
        return self.next_line(job_id)

    def next_line(self, job_id: str) -> int:
        """The first line with no task yet (lines are enqueued in order)."""
        top = self._s.execute(select(func.max(_T.c.line)).where(_T.c.job_id == job_id)).scalar()
        return 0 if top is None else int(top) + 1

    def cancel_tasks(self, job_id: str, reason: str = "its job was cancelled") -> int:
        """Its pending and running tasks become `cancelled` (a running one's dispatcher
        sees it and drops the call; its late answer is stale). Returns how many."""
        now = self._now()
        live = (TaskStatus.PENDING.value, TaskStatus.RUNNING.value)
        ids = [
            r.id
            for r in self._s.execute(
                select(_T.c.id).where(_T.c.job_id == job_id, _T.c.status.in_(live))
            ).all()
        ]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self._s.execute(
                update(_T)
                .where(_T.c.id.in_(chunk), _T.c.status.in_(live))
                .values(
                    status=TaskStatus.CANCELLED.value,
                    finished_at=now,
                    lease_owner=None,
                    lease_until=None,
                    error=reason,
                    updated_at=now,
                )
            )
            self._s.execute(
                update(_A)
                .where(_A.c.task_id.in_(chunk), _A.c.outcome.is_(None))
                .values(finished_at=now, outcome=AttemptOutcome.CANCELLED.value, reason=reason)
            )
        return len(ids)

    def line_results(self, job_id: str, start: int, limit: int) -> builtins.list[LineResult]:
        """The tasks of lines `start` … `start + limit - 1`, in line order."""
        rows = self._s.execute(
            select(
                _T.c.id,
                _T.c.line,
                _T.c.status,
                _T.c.result_status,
                _T.c.result_type,
                _T.c.result,
                _T.c.result_file,
                _T.c.error,
            )
            .where(_T.c.job_id == job_id, _T.c.line >= start, _T.c.line < start + limit)
            .order_by(_T.c.line)
        ).all()
        return [
            LineResult(
                line=r.line,
                status=TaskStatus(r.status),
                result_status=r.result_status,
                result_type=r.result_type,
                result=r.result,
                result_file=r.result_file,
                error=r.error,
                task_id=r.id,
            )
            for r in rows
        ]


def iter_line_results(
    db: Any, job_id: str, total: int, page: int = 250
) -> Iterator[LineResult | None]:
    """Every line 0 … total-1 of a job, in order: its task's result, or None for a line
    that has no task (a cancelled job's lines never enqueued). One unit of work a page
    (250 lines: at most ~16 MB of inline results held at once)."""
    for start in range(0, total, page):
        with db.unit_of_work(read_only=True) as uow:
            found = {r.line: r for r in uow.jobs.line_results(job_id, start, page)}
        for line in range(start, min(total, start + page)):
            yield found.get(line)


def _view(m: Any) -> JobView:
    return JobView(
        id=m["id"],
        project=m["project"],
        endpoint=m["endpoint"],
        kind=m["kind"],
        status=JobStatus(m["status"]),
        method=m["method"],
        path=m["path"],
        concurrency=m["concurrency"],
        input_file=m["input_file"],
        output_file=m["output_file"],
        error_file=m["error_file"],
        lines_total=m["lines_total"],
        error=m["error"],
        token_id=m["token_id"],
        labels=dict(m["labels"] or {}),
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
    )
