"""Tasks as the API answers them (`core.task_schemas.TaskOut`), built from the store's
`TaskView`: the bare endpoint name, the inline JSON result parsed, the result's URL, the
queue position of a pending task and (for one task) every attempt with its reason.

The same document is what a callback POSTs (`server/callbacks.py`), so a receiver and a
poller read one shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from podium.core.access import split_key
from podium.core.task_schemas import (
    RESULT_URL,
    TaskAttemptOut,
    TaskCallbackOut,
    TaskOut,
)
from podium.core.tasks import TaskStatus
from podium.store.task_records import AttemptView, TaskView

JSON_TYPES = ("application/json", "application/problem+json")


def is_json(content_type: str | None) -> bool:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return base in JSON_TYPES or base.endswith("+json")


def has_result(task: TaskView) -> bool:
    return task.status is not TaskStatus.EXPIRED and (
        task.result is not None or task.result_file is not None
    )


def inline_json(task: TaskView) -> Any:
    """The inline result's JSON value, None when there is none or it is not JSON."""
    if task.result is None or not is_json(task.result_type):
        return None
    try:
        return json.loads(task.result)
    except (ValueError, RecursionError):
        return None


def task_out(
    task: TaskView,
    *,
    position: int | None = None,
    attempts: Sequence[AttemptView] | None = None,
    full: bool = True,
) -> TaskOut:
    """The public view; `full=False` leaves out `result` and `attempt_log` (list pages)."""
    callback = (
        None
        if task.callback_url is None
        else TaskCallbackOut(
            url=task.callback_url,
            state=task.callback_state,
            attempts=task.callback_attempts,
            error=task.callback_error,
        )
    )
    log = None
    if full and attempts is not None:
        log = [
            TaskAttemptOut(
                attempt=a.attempt,
                outcome=None if a.outcome is None else a.outcome.value,
                status=a.status,
                reason=a.reason,
                replica_id=a.replica_id,
                started_at=a.started_at,
                finished_at=a.finished_at,
            )
            for a in attempts
        ]
    return TaskOut(
        id=task.id,
        endpoint=split_key(task.endpoint)[1],
        project=task.project,
        status=task.status,
        method=task.method,
        path=task.path,
        priority=task.priority,
        attempts=task.attempts,
        max_attempts=task.max_attempts,
        created_at=task.created_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        expires_at=task.expires_at,
        queue_position=position,
        result=inline_json(task) if full and has_result(task) else None,
        result_url=RESULT_URL.format(id=task.id) if has_result(task) else None,
        result_status=task.result_status,
        result_type=task.result_type,
        error=task.error,
        job_id=task.job_id,
        line=task.line,
        idempotency_key=task.idempotency_key,
        callback=callback,
        attempt_log=log,
    )


def task_document(task: TaskOut) -> dict[str, Any]:
    """The JSON document of a task (None fields kept: a reader sees every field)."""
    return task.model_dump(mode="json")
