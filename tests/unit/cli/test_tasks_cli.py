"""`podium tasks NAME`, `podium task ID [--json] [--cancel]` and `invoke --async` flags,
against the real server app; the test plays the gateway and dispatcher on its store."""

from __future__ import annotations

import json
import re

from podium.core.tasks import AttemptOutcome
from podium.store.task_records import NewTask, Outcome
from tests.support.inproc import InProcessPodium
from tests.unit.cli.conftest import Cli


def _enqueue(api: InProcessPodium, body: bytes = b"{}", **kw: object) -> str:
    fields: dict[str, object] = {
        "endpoint": "iris",
        "project": "default",
        "method": "POST",
        "path": "/predict",
        "body": body,
        "max_attempts": 2,
    }
    fields.update(kw)
    with api.podium.db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(NewTask(**fields))  # type: ignore[arg-type]
    return task.id


def _attempt(api: InProcessPodium, outcome: Outcome) -> None:
    with api.podium.db.unit_of_work() as uow:
        (c,) = uow.tasks.claim("d1", {"iris": 1})
        uow.tasks.finish(c.id, c.attempt, "d1", outcome)


def test_tasks_table_and_status_filter(cli: Cli, api: InProcessPodium, deployed: str) -> None:
    done = _enqueue(api, b"1")
    waiting = _enqueue(api, b"2", priority=7)
    _attempt(api, Outcome(AttemptOutcome.FAILED, 422, reason="HTTP 422: inputs missing"))
    r = cli("tasks", "iris")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == [
        "ID",
        "STATUS",
        "CREATED",
        "ATTEMPTS",
        "PRI",
        "QUEUE",
        "PATH",
        "ERROR",
    ]
    # waiting (priority 7) was claimed first: it failed; done is still pending
    assert waiting in lines[1] and "failed" in lines[1] and "HTTP 422: inputs missing" in lines[1]
    assert lines[1].split()[4:8] == ["1/2", "7", "-", "POST"]
    assert done in lines[2] and "pending" in lines[2]
    assert lines[2].split()[4:8] == ["0/2", "5", "1", "POST"]
    r = cli("tasks", "iris", "--status", "pending")
    assert r.exit_code == 0
    assert [line.split()[0] for line in r.output.splitlines()[1:]] == [done]
    r = cli("tasks", "iris", "--status", "cancelled")
    assert (r.exit_code, r.output) == (0, "no tasks\n")
    r = cli("tasks", "ghost")
    assert r.exit_code == 1
    assert r.output.startswith("error: ")


def test_task_detail_json_and_cancel(cli: Cli, api: InProcessPodium, deployed: str) -> None:
    task_id = _enqueue(api, idempotency_key="order-17")
    _attempt(api, Outcome(AttemptOutcome.RETRY, 503, reason="HTTP 503", replica_id="iris-r1"))
    r = cli("task", task_id)
    assert r.exit_code == 0, r.output
    rows = {line.split(None, 1)[0]: line for line in r.output.splitlines()}
    assert "pending" in rows["status"]
    assert rows["queue"].split()[-1] == "1"
    assert "order-17" in r.output
    # the attempt's duration is whatever the machine took: only its shape is asserted
    assert re.search(r"retry HTTP 503 on iris-r1 in \d+\.\d\d s: HTTP 503", r.output), r.output
    r = cli("task", task_id, "--json")
    doc = json.loads(r.output)
    assert (doc["id"], doc["status"], doc["attempts"]) == (task_id, "pending", 1)
    assert [a["outcome"] for a in doc["attempt_log"]] == ["retry"]
    r = cli("task", task_id, "--cancel")
    assert r.exit_code == 0, r.output
    assert "cancelled" in r.output and "cancelled by the caller" in r.output
    r = cli("task", task_id, "--cancel")
    assert r.exit_code == 1
    assert r.output == (
        f"error: status: task {task_id} has ended (cancelled): it cannot be cancelled\n"
    )
    r = cli("task", "task_00")
    assert (r.exit_code, r.output) == (1, "error: task_id: task 'task_00' not found\n")


def test_invoke_wait_needs_async(cli: Cli, deployed: str) -> None:
    r = cli("invoke", "iris", "-d", "{}", "--wait")
    assert r.exit_code == 2
    assert "--wait and --timeout need --async" in r.output
