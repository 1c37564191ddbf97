"""What the task queue's rows are, as the rest of Podium sees them (issue 13): a task to
enqueue (`NewTask`), a task as the API shows it (`TaskView`) and its attempts
(`AttemptView`), a task a dispatcher holds (`Claimed`) and how its attempt ended
(`Outcome`), an endpoint's queue depth (`QueueDepth`), an expired lease a sweep found
(`ExpiredLease`). Plain values: no session, no I/O. The statements are `store.tasks`'
(the queue) and `store.task_views`' (the control plane's reads and cancels).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.core.tasks import AttemptOutcome, TaskId, TaskStatus


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to enqueue: the call (as a synchronous one would be made) and its options."""

    endpoint: str  # the endpoint's key
    project: str
    method: str
    path: str  # the replica path and query
    body: bytes
    headers: Sequence[tuple[str, str]] = ()  # forwarded with it (never credentials)
    priority: int = 5
    max_attempts: int = 3
    lease_s: float = 90.0
    ttl_s: float = 86400.0
    idempotency_key: str | None = None
    token_id: str | None = None
    callback_url: str | None = None
    job_id: str | None = None
    line: int | None = None
    # A job line that is not a valid request is stored failed with this reason, never run.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task as the API shows it (the body is not read back: it may be large)."""

    id: str
    endpoint: str
    project: str
    method: str
    path: str
    status: TaskStatus
    priority: int
    attempts: int
    max_attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float
    lease_until: float | None
    idempotency_key: str | None
    token_id: str | None
    job_id: str | None
    line: int | None
    result_status: int | None
    result_type: str | None
    result: bytes | None  # inline; None when in `result_file` or none yet
    result_file: str | None
    error: str | None
    callback_url: str | None
    callback_state: str | None
    callback_attempts: int
    callback_error: str | None
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AttemptView:
    attempt: int
    owner: str
    started_at: float
    finished_at: float | None
    outcome: AttemptOutcome | None
    status: int | None
    reason: str | None
    replica_id: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A task a dispatcher holds: make the call, then `finish(id, attempt, owner, …)`."""

    id: TaskId
    endpoint: str
    project: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    attempt: int
    max_attempts: int
    lease_until: float
    created_at: float
    token_id: str | None
    job_id: str | None
    line: int | None
    # When it last became pending (created, or sent back for a retry): its queue wait for
    # this attempt is counted from here (the request record's `queue_ms`).
    pending_since: float = 0.0


@dataclass(frozen=True, slots=True)
class ExpiredLease:
    """A running task whose lease ran out, as a sweep read it (`TaskRepo.release`)."""

    task_id: str
    attempts: int
    max_attempts: int
    callback_url: str | None


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """An endpoint's pending tasks: how many, and when the oldest was created."""

    pending: int
    oldest_created_at: float
    running: int = 0


@dataclass(slots=True)
class Outcome:
    """How an attempt ended, for `finish`."""

    kind: AttemptOutcome
    status: int | None = None  # the HTTP status the call got (None: no answer)
    reason: str | None = None  # why it failed (kept per attempt)
    result: bytes | None = None  # a success's body, when kept inline
    result_type: str | None = None
    result_file: str | None = None  # a success's body, when stored as a file
    replica_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def task_view(m: Any) -> TaskView:
    """A `tasks` row (a mapping of its columns) as a `TaskView`."""
    return TaskView(
        id=m["id"],
        endpoint=m["endpoint"],
        project=m["project"],
        method=m["method"],
        path=m["path"],
        status=TaskStatus(m["status"]),
        priority=m["priority"],
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        expires_at=m["expires_at"],
        lease_until=m["lease_until"],
        idempotency_key=m["idempotency_key"],
        token_id=m["token_id"],
        job_id=m["job_id"],
        line=m["line"],
        result_status=m["result_status"],
        result_type=m["result_type"],
        result=m["result"],
        result_file=m["result_file"],
        error=m["error"],
        callback_url=m["callback_url"],
        callback_state=m["callback_state"],
        callback_attempts=m["callback_attempts"],
        callback_error=m["callback_error"],
        seq=m["seq"],
    )
