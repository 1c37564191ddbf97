"""Async tasks end to end against one real `podium up` (SQLite, real replica processes):
a task through the gateway's async route and its dispatcher, idempotency, cancelling a
pending and a running task, dead-lettering, and the request records that name a task.

The task is read from the server's own queue (its `podium.db`): the task API is another
part of issue 13."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store import Database
from tests.integration.tasks_kit import attempts, queue_db, task, write_tasker
from tests.support.server import ServerProcess, running_server, wait_running, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`tasker` (2 attempts) and `single` (one task slot: max_concurrency 1)."""
    tmp = tmp_path_factory.mktemp("tasks")
    with running_server(tmp / "home") as s, s.client() as c:
        c.push_model(write_tasker(tmp / "tasker"), "tasker", framework="python")
        c.deploy(
            {
                "name": "tasker",
                "model": "tasker",
                "framework": "python",
                "tasks": {"max_attempts": 2},
            }
        )
        c.deploy({"name": "single", "model": "tasker", "framework": "python", "max_concurrency": 1})
        wait_running(c, "tasker")
        wait_running(c, "single")
        yield s


@pytest.fixture(scope="module")
def db(server: ServerProcess) -> Iterator[Database]:
    database = queue_db(server.home)
    yield database
    database.dispose()


def _submit(server: ServerProcess, name: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/endpoints/{name}/async/",
        json={"inputs": body},
        headers={**server.headers, **headers},
        timeout=10,
    )


def _wait_status(db: Database, task_id: str, *statuses: TaskStatus) -> None:
    wait_until(lambda: task(db, task_id).status in statuses, 30, f"{task_id} in {statuses}")


def test_a_task_runs_and_keeps_its_result(server: ServerProcess, db: Database) -> None:
    r = _submit(server, "tasker", {"n": 5})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    assert r.headers["location"] == f"/api/v1/tasks/{task_id}"
    _wait_status(db, task_id, TaskStatus.SUCCEEDED, TaskStatus.FAILED)
    done = task(db, task_id)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.result is not None and json.loads(done.result) == {"echo": {"n": 5}}
    assert (done.result_status, done.attempts) == (200, 1)
    assert done.result_type is not None and done.result_type.startswith("application/json")
    (attempt,) = attempts(db, task_id)
    assert attempt.outcome is AttemptOutcome.SUCCEEDED and attempt.replica_id  # who answered


def test_the_same_idempotency_key_is_the_same_task(server: ServerProcess) -> None:
    first = _submit(server, "tasker", 1, **{"Idempotency-Key": "order-1"})
    again = _submit(server, "tasker", 1, **{"Idempotency-Key": "order-1"})
    other = _submit(server, "tasker", 2, **{"Idempotency-Key": "order-1"})
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 409)
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.headers["idempotency-replayed"] == "true"
    assert other.json()["field"] == "Idempotency-Key"


def test_cancel_a_pending_then_a_running_task(server: ServerProcess, db: Database) -> None:
    running = _submit(server, "single", {"sleep": 5}).json()["task_id"]
    _wait_status(db, running, TaskStatus.RUNNING)
    pending = _submit(server, "single", {"n": 1}).json()["task_id"]
    assert task(db, pending).status is TaskStatus.PENDING  # the one task slot is taken
    for task_id in (pending, running):  # through the API, as a user cancels
        r = httpx.delete(f"{server.url}/api/v1/tasks/{task_id}", headers=server.headers)
        assert (r.status_code, r.json()["status"]) == (200, "cancelled"), r.text
    again = httpx.delete(f"{server.url}/api/v1/tasks/{pending}", headers=server.headers)
    assert (again.status_code, again.json()["field"]) == (409, "status")
    # The dispatcher sees it within poll_s and cancels the call: its record ends with the
    # client gone (status 0); a call that ran to its end would be a 200.
    url = f"{server.url}/api/v1/endpoints/single/requests?task_id={running}"

    def cut() -> bool:
        items = httpx.get(url, headers=server.headers, timeout=10).json()["items"]
        return any(i["status"] == 0 for i in items)

    wait_until(cut, 15, "the running task's call cut")
    assert [a.outcome for a in attempts(db, running)] == [AttemptOutcome.CANCELLED]
    assert attempts(db, pending) == []
    assert task(db, running).status is TaskStatus.CANCELLED


def test_a_failing_task_is_dead_lettered_with_every_reason(
    server: ServerProcess, db: Database
) -> None:
    task_id = _submit(server, "tasker", {"raise": 1}).json()["task_id"]
    _wait_status(db, task_id, TaskStatus.FAILED)
    failed = task(db, task_id)
    tries = attempts(db, task_id)
    assert failed.attempts == 2
    assert failed.error is not None and failed.error.startswith("failed 2 times (dead-lettered)")
    assert [(a.outcome, a.status) for a in tries] == [(AttemptOutcome.RETRY, 500)] * 2
    assert all(a.reason and "asked to fail" in a.reason for a in tries)


def test_a_bad_request_fails_once_without_a_retry(server: ServerProcess, db: Database) -> None:
    r = httpx.post(
        f"{server.url}/endpoints/tasker/async/",
        content=b"not json",
        headers={**server.headers, "content-type": "application/json"},
    )
    task_id = r.json()["task_id"]
    _wait_status(db, task_id, TaskStatus.FAILED)
    assert [(a.outcome, a.status) for a in attempts(db, task_id)] == [(AttemptOutcome.FAILED, 422)]


def test_the_request_records_of_a_task_name_it(server: ServerProcess, db: Database) -> None:
    task_id = _submit(server, "tasker", "recorded").json()["task_id"]
    _wait_status(db, task_id, TaskStatus.SUCCEEDED)
    url = f"{server.url}/api/v1/endpoints/tasker/requests?task_id={task_id}"

    def both() -> list[dict[str, object]]:
        items: list[dict[str, object]] = httpx.get(url, headers=server.headers).json()["items"]
        return items

    wait_until(lambda: len(both()) == 2, 15, "both records written")
    ran, enqueued = both()  # newest first
    assert (enqueued["status"], enqueued["task_id"]) == (202, task_id)
    assert (ran["status"], ran["task_id"], ran["request_id"]) == (200, task_id, f"{task_id}-1")
    assert ran["token_id"] == enqueued["token_id"] and ran["token_id"]
    assert isinstance(ran["queue_ms"], float) and ran["queue_ms"] >= 0.0


def test_a_burst_of_tasks_leaves_synchronous_callers_their_slots(
    server: ServerProcess, db: Database
) -> None:
    """10,000 tasks queued at once on an endpoint of 4 slots (1 replica, max_concurrency 4)
    take at most half of them (`PODIUM_TASK_SLOT_SHARE` 0.5): 2 synchronous callers
    calling back to back throughout are never held for a slot (every record's `queue_ms`
    is 0; with tasks on all 4 slots they would wait), while the burst is still queued."""
    from concurrent.futures import ThreadPoolExecutor

    from podium.store.task_records import NewTask

    with server.client() as c:
        c.deploy(
            {
                "name": "burst",
                "model": "tasker",
                "framework": "python",
                "max_concurrency": 4,
                "scaling": {"min_replicas": 1, "max_replicas": 1},
            }
        )
        wait_running(c, "burst")
    body = json.dumps({"inputs": {"sleep": 0.05}}).encode()
    burst = [
        NewTask(
            endpoint="burst",
            project="default",
            method="POST",
            path="/",
            body=body,
            headers=(("content-type", "application/json"),),
        )
        for _ in range(10_000)
    ]
    with db.unit_of_work() as uow:  # as the intake would, all at once
        uow.tasks.enqueue_many(burst)
    wait_until(lambda: _running(db, "burst") > 0, 30, "the burst running")

    def caller(n: int) -> list[int]:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
            return [
                http.post("/endpoints/burst/", json={"inputs": {"n": n, "i": i}}).status_code
                for i in range(25)
            ]

    with ThreadPoolExecutor(2) as pool:
        statuses = [s for got in pool.map(caller, (1, 2)) for s in got]
    assert statuses == [200] * 50
    with db.unit_of_work(read_only=True) as uow:
        still_queued = uow.tasks.depth()["burst"].pending
    assert still_queued > 9_000  # the burst was there all along
    url = f"{server.url}/api/v1/endpoints/burst/requests?limit=1000"

    def synchronous() -> list[dict[str, object]]:
        items = httpx.get(url, headers=server.headers, timeout=10).json()["items"]
        return [i for i in items if i["task_id"] is None]

    wait_until(lambda: len(synchronous()) == 50, 30, "the 50 records written")
    assert {(r["status"], r["queue_ms"]) for r in synchronous()} == {(200, 0.0)}
    with server.client() as c:  # its 10,000 queued tasks are cancelled with it
        c.delete("burst")


def _running(db: Database, endpoint: str) -> int:
    with db.unit_of_work(read_only=True) as uow:
        depth = uow.tasks.depth().get(endpoint)
    return 0 if depth is None else depth.running
