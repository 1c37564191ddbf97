"""Async tasks and batch jobs (issue 13): their states, transitions, ids and limits.

A **task** is one async invocation: the body and path a synchronous call would take, kept
in the store's durable queue until a dispatcher runs it through the gateway's pipeline.

    pending ──► running ──► succeeded ──► expired
       │  ▲        │ └────► failed ─────► expired
       │  └────────┤        (K attempts failed: dead-lettered, every reason kept)
       ├──► cancelled ◄─────┘
       └──► expired   (its TTL passed before it ran)

`running ──► pending` is a retry: the attempt failed (the replica crashed, a 5xx, a
timeout) or its lease ran out (the dispatcher that held it died) and attempts remain.
Results expire `ttl_s` after the task was created: a finished task becomes `expired` and
its result is deleted; a pending one becomes `expired` without running.

A **job** runs every line of a JSONL input file through an endpoint; each line is one
task of the job (`tasks.job_id`, `tasks.line`), so the queue's guarantees (leases, retries,
resume after a crash) hold for jobs with no second mechanism.

    validating ──► in_progress ──► finalizing ──► completed
        │               │  └──────► cancelling ──► cancelled
        └─────────► failed ◄──────────┘ (the input could not be read; not bad lines)
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import NewType

from podium.core.errors import Conflict

TaskId = NewType("TaskId", str)
JobId = NewType("JobId", str)
FileId = NewType("FileId", str)

# Limits of what a caller may ask for (the gateway refuses more with 400 naming the header).
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 9, 5  # higher runs first
MIN_TTL_S = 60.0
MAX_TTL_S = 30 * 86400.0
DEFAULT_TTL_S = 86400.0
MAX_IDEMPOTENCY_KEY = 128
MAX_CALLBACK_URL = 2048
MAX_ERROR_CHARS = 2000  # an attempt's reason is cut to this
# The ASGI scope's key for the id of the task a dispatched call runs (its request record
# names the task).
TASK_KEY = "podium.task"


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_T = TaskStatus

TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    _T.PENDING: frozenset({_T.RUNNING, _T.CANCELLED, _T.EXPIRED, _T.FAILED}),
    _T.RUNNING: frozenset({_T.PENDING, _T.SUCCEEDED, _T.FAILED, _T.CANCELLED, _T.EXPIRED}),
    _T.SUCCEEDED: frozenset({_T.EXPIRED}),
    _T.FAILED: frozenset({_T.EXPIRED}),
    _T.CANCELLED: frozenset({_T.EXPIRED}),
    _T.EXPIRED: frozenset(),
}
# A task in one of these has its outcome; a callback is sent for each (but `expired`).
TASK_FINAL: frozenset[TaskStatus] = frozenset({_T.SUCCEEDED, _T.FAILED, _T.CANCELLED})
TASK_ENDED: frozenset[TaskStatus] = TASK_FINAL | {_T.EXPIRED}


def task_can_transition(old: TaskStatus, new: TaskStatus) -> bool:
    return new in TASK_TRANSITIONS[old]


def check_task_transition(old: TaskStatus, new: TaskStatus) -> None:
    if not task_can_transition(old, new):
        raise Conflict(f"a task cannot go from {old.value} to {new.value}", field="status")


class AttemptOutcome(StrEnum):
    """How one attempt of a task ended (`task_attempts.outcome`)."""

    SUCCEEDED = "succeeded"  # 2xx: the result is recorded (once: the attempt holds the lease)
    FAILED = "failed"  # a 4xx: the caller's mistake, not retried
    RETRY = "retry"  # a 5xx, a crash, a timeout: tried again while attempts remain
    LEASE_EXPIRED = "lease_expired"  # its dispatcher died or hung; another took it over
    CANCELLED = "cancelled"
    STALE = "stale"  # answered after its lease passed to another attempt: discarded
    RELEASED = "released"  # its server stopped: given back to the queue, to run again


class JobStatus(StrEnum):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"


_J = JobStatus

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    _J.VALIDATING: frozenset({_J.IN_PROGRESS, _J.FAILED, _J.CANCELLING, _J.CANCELLED}),
    _J.IN_PROGRESS: frozenset({_J.FINALIZING, _J.CANCELLING, _J.FAILED}),
    _J.FINALIZING: frozenset({_J.COMPLETED, _J.FAILED}),
    _J.CANCELLING: frozenset({_J.CANCELLED, _J.FAILED}),
    _J.COMPLETED: frozenset(),
    _J.CANCELLED: frozenset(),
    _J.FAILED: frozenset(),
}
JOB_ENDED: frozenset[JobStatus] = frozenset({_J.COMPLETED, _J.CANCELLED, _J.FAILED})


def job_can_transition(old: JobStatus, new: JobStatus) -> bool:
    return new in JOB_TRANSITIONS[old]


def check_job_transition(old: JobStatus, new: JobStatus) -> None:
    if not job_can_transition(old, new):
        raise Conflict(f"a job cannot go from {old.value} to {new.value}", field="status")


class FilePurpose(StrEnum):
    """Why a file is in the file store (OpenAI's names where they exist)."""

    BATCH = "batch"  # a job's JSONL input
    BATCH_OUTPUT = "batch_output"  # a job's output (and error) lines
    TASK_RESULT = "task_result"  # a task's result too large or not JSON to keep inline


def new_task_id() -> TaskId:
    return TaskId(f"task_{secrets.token_hex(12)}")


def new_job_id() -> JobId:
    return JobId(f"job_{secrets.token_hex(12)}")


def new_file_id() -> FileId:
    return FileId(f"file_{secrets.token_hex(12)}")
