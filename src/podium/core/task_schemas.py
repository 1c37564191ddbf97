"""Tasks as the API shows them (`GET /api/v1/tasks/{id}`, the endpoint's task list), the
SDK reads them, the CLI prints them and a callback receiver gets them (issue 13).

One model for all four, in `core` so the SDK (which imports nothing else of the server)
parses exactly what the API writes. Times are unix seconds (floats).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from podium.core.tasks import TaskStatus

RESULT_URL = "/api/v1/tasks/{id}/result"


class TaskAttemptOut(BaseModel):
    """One attempt of a task: who ran it, how it ended and why (`outcome` None: running)."""

    model_config = ConfigDict(extra="allow")

    attempt: int
    outcome: str | None = None
    status: int | None = None  # the HTTP status the call got (None: no answer)
    reason: str | None = None
    replica_id: str | None = None
    started_at: float
    finished_at: float | None = None


class TaskCallbackOut(BaseModel):
    """Where the task's outcome is POSTed, and how that went (`state`: None until the task
    ends, then pending → delivered | failed)."""

    model_config = ConfigDict(extra="allow")

    url: str
    state: str | None = None
    attempts: int = 0
    error: str | None = None


class TaskOut(BaseModel):
    """One async task. `result` is the JSON value of an inline JSON result (else None:
    fetch `result_url`); `queue_position` is set only while pending (1 = next);
    `attempt_log` is left out of list pages."""

    model_config = ConfigDict(extra="allow")  # a field a newer server adds is kept

    id: str
    endpoint: str  # the name, within `project`
    project: str
    status: TaskStatus
    method: str
    path: str
    priority: int
    attempts: int
    max_attempts: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float
    queue_position: int | None = None
    result: object | None = None
    result_url: str | None = None
    result_status: int | None = None
    result_type: str | None = None
    error: str | None = None
    job_id: str | None = None
    line: int | None = None
    idempotency_key: str | None = None
    callback: TaskCallbackOut | None = None
    attempt_log: list[TaskAttemptOut] | None = None


class TaskPage(BaseModel):
    """A page of an endpoint's tasks, newest first; `next_cursor` asks for the next one."""

    items: list[TaskOut]
    next_cursor: str | None = None


class CallbackKeyOut(BaseModel):
    """An endpoint's callback signing key (hex of 32 bytes): `core.callbacks.verify`."""

    key: str
