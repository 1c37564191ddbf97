"""The task routes (issue 13) over a real API and a migrated SQLite store: a task's view,
its result, cancel, the endpoint's pages, and who may see them.

Tasks are made as the gateway makes them (`TaskRepo.enqueue`) and moved as the dispatcher
moves them (`claim`, `finish`)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from podium.api import ApiContext
from podium.core.access import Scope
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store import Database
from podium.store.secret_box import SecretBox
from podium.store.task_records import NewTask, Outcome
from tests.unit.api.conftest import make_token, push, spec


def _deploy(client: TestClient, name: str = "iris-ep", project: str | None = None) -> None:
    if push(client, "iris", b"v1", filename="m.skops").status_code not in (200, 201, 409):
        raise AssertionError("push failed")
    body = spec(name) if project is None else spec(name, project=project)
    r = client.post("/api/v1/endpoints", json=body)
    assert r.status_code == 201, r.text


def _enqueue(db: Database, endpoint: str = "iris-ep", **kw: object) -> str:
    fields: dict[str, object] = {
        "endpoint": endpoint,
        "project": "default",
        "method": "POST",
        "path": "/predict",
        "body": b'{"inputs": [[1, 2, 3, 4]]}',
        "headers": (("content-type", "application/json"),),
        "max_attempts": 2,
    }
    fields.update(kw)
    with db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(NewTask(**fields))  # type: ignore[arg-type]
    return task.id


def _run(db: Database, endpoint: str, outcome: Outcome) -> None:
    with db.unit_of_work() as uow:
        claimed = uow.tasks.claim("d1", {endpoint: 1})
    assert len(claimed) == 1
    with db.unit_of_work() as uow:
        uow.tasks.finish(claimed[0].id, claimed[0].attempt, "d1", outcome)


def test_a_pending_task_shows_its_place_then_its_result(client: TestClient, db: Database) -> None:
    _deploy(client)
    first = _enqueue(db, priority=5)
    second = _enqueue(db, priority=5, idempotency_key="k-2")
    urgent = _enqueue(db, priority=9)
    r = client.get(f"/api/v1/tasks/{second}")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "pending"
    assert doc["queue_position"] == 3  # after the urgent one and the first
    assert (doc["endpoint"], doc["project"], doc["method"], doc["path"]) == (
        "iris-ep",
        "default",
        "POST",
        "/predict",
    )
    assert (doc["priority"], doc["attempts"], doc["max_attempts"]) == (5, 0, 2)
    assert doc["idempotency_key"] == "k-2"
    assert doc["result"] is None and doc["result_url"] is None
    assert doc["attempt_log"] == []
    assert doc["callback"] is None
    assert client.get(f"/api/v1/tasks/{urgent}").json()["queue_position"] == 1

    _run(db, "iris-ep", Outcome(AttemptOutcome.SUCCEEDED, 200, result=b"{}", result_type="x/y"))
    _run(
        db,
        "iris-ep",
        Outcome(
            AttemptOutcome.SUCCEEDED,
            200,
            result=b'{"label": 2}',
            result_type="application/json",
            replica_id="r1",
        ),
    )
    doc = client.get(f"/api/v1/tasks/{first}").json()
    assert doc["status"] == "succeeded"
    assert doc["queue_position"] is None
    assert doc["result"] == {"label": 2}
    assert doc["result_url"] == f"/api/v1/tasks/{first}/result"
    assert (doc["result_status"], doc["result_type"]) == (200, "application/json")
    assert [
        (a["attempt"], a["outcome"], a["status"], a["replica_id"]) for a in doc["attempt_log"]
    ] == [(1, "succeeded", 200, "r1")]
    r = client.get(f"/api/v1/tasks/{first}/result")
    assert r.status_code == 200
    assert r.content == b'{"label": 2}'
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-podium-result-status"] == "200"
    # A result that is not JSON: no `result` value, the bytes at result_url.
    raw = client.get(f"/api/v1/tasks/{urgent}").json()
    assert raw["result"] is None and raw["result_type"] == "x/y"
    assert client.get(f"/api/v1/tasks/{urgent}/result").content == b"{}"


def test_a_dead_lettered_task_keeps_every_reason(client: TestClient, db: Database) -> None:
    _deploy(client)
    task = _enqueue(db)
    _run(db, "iris-ep", Outcome(AttemptOutcome.RETRY, 503, reason="HTTP 503 from the replica"))
    with db.unit_of_work() as uow:  # its retry delay has passed (`store.tasks.retry_delay`)
        uow.session.execute(text("UPDATE tasks SET lease_until = NULL"))
    _run(db, "iris-ep", Outcome(AttemptOutcome.RETRY, None, reason="connection refused"))
    doc = client.get(f"/api/v1/tasks/{task}").json()
    assert doc["status"] == "failed"
    assert doc["error"] == "failed 2 times (dead-lettered); last: connection refused"
    assert [(a["outcome"], a["status"], a["reason"]) for a in doc["attempt_log"]] == [
        ("retry", 503, "HTTP 503 from the replica"),
        ("retry", None, "connection refused"),
    ]
    r = client.get(f"/api/v1/tasks/{task}/result")
    assert r.status_code == 404
    assert r.json()["field"] == "result"
    assert r.json()["detail"] == f"task {task} has no result (failed)"


def test_cancel_pending_and_running_then_conflict(client: TestClient, db: Database) -> None:
    _deploy(client)
    pending = _enqueue(db)
    r = client.delete(f"/api/v1/tasks/{pending}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.json()["error"] == "cancelled by the caller"
    running = _enqueue(db, callback_url="http://127.0.0.1:9/hook")
    with db.unit_of_work() as uow:
        (claimed,) = uow.tasks.claim("d1", {"iris-ep": 1})
    r = client.delete(f"/api/v1/tasks/{running}")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "cancelled"
    assert doc["callback"] == {
        "url": "http://127.0.0.1:9/hook",
        "state": "pending",
        "attempts": 0,
        "error": None,
    }
    assert [(a["outcome"], a["reason"]) for a in doc["attempt_log"]] == [
        ("cancelled", "cancelled by the caller")
    ]
    # The dispatcher's late answer is stale: the task stays cancelled.
    with db.unit_of_work() as uow:
        late = uow.tasks.finish(
            claimed.id, claimed.attempt, "d1", Outcome(AttemptOutcome.SUCCEEDED, 200, result=b"1")
        )
    assert late is None
    assert client.get(f"/api/v1/tasks/{running}").json()["status"] == "cancelled"
    r = client.delete(f"/api/v1/tasks/{running}")
    assert r.status_code == 409
    assert r.json()["field"] == "status"
    assert r.json()["detail"] == f"task {running} has ended (cancelled): it cannot be cancelled"
    with db.unit_of_work(read_only=True) as uow:
        audited = uow.audit.list(action="task")
    assert [(e.action, e.object_name, e.project, e.result) for e in audited] == [
        ("task.delete", pending, "default", 200),
        ("task.delete", running, "default", 200),
        ("task.delete", running, "default", 409),
    ]


def test_unknown_and_expired_tasks(client: TestClient, db: Database) -> None:
    _deploy(client)
    for bad in ("task_0123456789abcdef01234567", "nope", "task_XYZ"):
        r = client.get(f"/api/v1/tasks/{bad}")
        assert r.status_code == 404, bad
        assert r.json()["field"] == "task_id"
    task = _enqueue(db)
    _run(
        db,
        "iris-ep",
        Outcome(AttemptOutcome.SUCCEEDED, 200, result=b"[1]", result_type="application/json"),
    )
    with db.unit_of_work() as uow:  # what the dispatcher's sweep does past the TTL
        uow.session.execute(
            text("UPDATE tasks SET status = 'expired', result = NULL WHERE id = :id"),
            {"id": task},
        )
    r = client.get(f"/api/v1/tasks/{task}/result")
    assert r.status_code == 410
    assert r.json()["title"] == "Gone"
    assert r.json()["field"] == "task_id"


def test_pages_newest_first_with_a_cursor_and_a_status(client: TestClient, db: Database) -> None:
    _deploy(client)
    _deploy(client, "other")
    ids = [_enqueue(db, body=str(i).encode()) for i in range(5)]
    _enqueue(db, "other")
    _run(db, "iris-ep", Outcome(AttemptOutcome.FAILED, 422, reason="HTTP 422"))  # ids[0]
    r = client.get("/api/v1/endpoints/iris-ep/tasks", params={"limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [t["id"] for t in page["items"]] == [ids[4], ids[3]]
    assert [t["queue_position"] for t in page["items"]] == [4, 3]
    assert all(t["attempt_log"] is None and t["result"] is None for t in page["items"])
    seen = [t["id"] for t in page["items"]]
    while page["next_cursor"] is not None:
        page = client.get(
            "/api/v1/endpoints/iris-ep/tasks", params={"limit": 2, "cursor": page["next_cursor"]}
        ).json()
        seen += [t["id"] for t in page["items"]]
    assert seen == ids[::-1]
    failed = client.get("/api/v1/endpoints/iris-ep/tasks", params={"status": "failed"}).json()
    assert [t["id"] for t in failed["items"]] == [ids[0]]
    assert failed["next_cursor"] is None
    for params, field in (
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"cursor": "x"}, "cursor"),
        ({"status": "done"}, "status"),
    ):
        r = client.get("/api/v1/endpoints/iris-ep/tasks", params=params)
        assert r.status_code == 422, params
        assert r.json()["field"] == field
    r = client.get("/api/v1/endpoints/ghost/tasks")
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("scopes", "projects", "want"),
    [
        ((Scope.READ,), ("default",), 403),  # a result is a model's output: read is not enough
        ((Scope.DEPLOY,), ("default",), 403),
        ((Scope.INVOKE,), ("team",), 404),  # invoke elsewhere: its tasks are not found
        ((Scope.INVOKE,), ("default",), 200),
    ],
)
def test_who_may_see_a_task(
    client: TestClient,
    db: Database,
    ctx: ApiContext,
    scopes: tuple[Scope, ...],
    projects: tuple[str, ...],
    want: int,
) -> None:
    _deploy(client)
    task = _enqueue(db)
    _run(
        db,
        "iris-ep",
        Outcome(AttemptOutcome.SUCCEEDED, 200, result=b"1", result_type="application/json"),
    )
    assert ctx.tokens is not None
    token = make_token(db, "someone", scopes, projects=projects, tokens=ctx.tokens)
    headers = {"Authorization": f"Bearer {token}"}
    calls = [
        ("GET", f"/api/v1/tasks/{task}"),
        ("GET", f"/api/v1/tasks/{task}/result"),
        ("GET", "/api/v1/endpoints/iris-ep/tasks"),
        ("DELETE", f"/api/v1/tasks/{task}"),  # ended: 409 for whoever may
    ]
    got = [client.request(m, u, headers=headers).status_code for m, u in calls]
    if want == 404:  # the endpoint's list names the project in its URL: 403 there
        assert got == [404, 404, 403, 404]
    else:
        assert got == ([want] * 3 + [409] if want == 200 else [want] * 4)
    if want == 403:
        detail = client.get(f"/api/v1/tasks/{task}", headers=headers).json()["detail"]
        assert "lacks scope 'invoke'" in detail


def test_callback_key_is_made_once_rotated_redacted_and_deleted_with_its_endpoint(
    client: TestClient, db: Database, ctx: ApiContext
) -> None:
    _deploy(client)
    r = client.get("/api/v1/endpoints/iris-ep/callback-key")
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    assert len(bytes.fromhex(key)) == 32
    assert client.get("/api/v1/endpoints/iris-ep/callback-key").json()["key"] == key
    rotated = client.post("/api/v1/endpoints/iris-ep/callback-key/rotate")
    assert rotated.status_code == 200
    new = rotated.json()["key"]
    assert new != key and len(bytes.fromhex(new)) == 32
    assert client.get("/api/v1/endpoints/iris-ep/callback-key").json()["key"] == new
    with db.unit_of_work(read_only=True) as uow:
        entries = uow.audit.list(action="callback_key")
    assert [(e.action, e.object_name, e.after) for e in entries] == [
        ("callback_key.rotate", "iris-ep", {"key": "[redacted]"})
    ]
    with db.unit_of_work(read_only=True) as uow:
        everything = json.dumps(
            [dataclasses.asdict(e) for e in uow.audit.list(limit=1000)], default=str
        )
    assert new not in everything and key not in everything
    assert client.get("/api/v1/endpoints/ghost/callback-key").status_code == 404
    box = SecretBox(ctx.settings.secret_key_path)
    with db.unit_of_work() as uow:  # what the controller does once the replicas are gone
        uow.endpoints.delete("iris-ep")
    with db.unit_of_work(read_only=True) as uow:
        assert uow.callback_keys.get("iris-ep", box) is None


def test_task_status_values_match_the_store() -> None:
    assert {s.value for s in TaskStatus} == {
        "pending",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "expired",
    }


def test_deleting_an_endpoint_cancels_its_queued_tasks(client: TestClient, db: Database) -> None:
    """`DELETE /endpoints/{name}` cancels the endpoint's unfinished tasks in the same
    transaction: a re-created endpoint of the same name never runs them."""
    _deploy(client)
    queued = _enqueue(db)
    assert client.delete("/api/v1/endpoints/iris-ep").status_code in (200, 202)
    task = client.get(f"/api/v1/tasks/{queued}").json()
    assert (task["status"], task["error"]) == ("cancelled", "its endpoint was deleted")
