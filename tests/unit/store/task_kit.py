"""What the task queue's store tests share: a task to enqueue with test defaults."""

from __future__ import annotations

from podium.store.task_records import NewTask


def new_task(body: bytes = b"{}", **fields: object) -> NewTask:
    """A task of endpoint `echo` (project default) to `POST /predict` with a 10 s lease;
    `fields` override any of it."""
    values: dict[str, object] = {
        "endpoint": "echo",
        "project": "default",
        "method": "POST",
        "path": "/predict",
        "body": body,
        "headers": (("content-type", "application/json"),),
        "lease_s": 10.0,
    }
    values.update(fields)
    return NewTask(**values)  # type: ignore[arg-type]
