"""The SDK's task methods against the real server app over loopback HTTP; the test plays
the gateway (`enqueue`) and the dispatcher (`claim`, `finish`) on the server's store."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.client import (
    Conflict,
    Forbidden,
    NotFound,
    PodiumClient,
    TaskFailed,
    TaskOut,
    TaskStatus,
    verify_signature,
)
from podium.core.callbacks import sign
from podium.core.tasks import AttemptOutcome
from podium.store.task_records import NewTask, Outcome
from tests.support.inproc import InProcessPodium
from tests.unit.client.test_packing import make_model


def _enqueue(podium: InProcessPodium, body: bytes = b"{}", **kw: object) -> str:
    fields: dict[str, object] = {
        "endpoint": "iris",
        "project": "default",
        "method": "POST",
        "path": "/predict",
        "body": body,
        "max_attempts": 1,
    }
    fields.update(kw)
    with podium.podium.db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(NewTask(**fields))  # type: ignore[arg-type]
    return task.id


def _finish(podium: InProcessPodium, outcome: Outcome) -> None:
    with podium.podium.db.unit_of_work() as uow:
        (c,) = uow.tasks.claim("d1", {"iris": 1})
        uow.tasks.finish(c.id, c.attempt, "d1", outcome)


@pytest.fixture
def deployed(client: PodiumClient, tmp_path: Path) -> None:
    client.push_model(make_model(tmp_path), "iris", framework="sklearn")
    client.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})


def test_a_future_waits_for_its_json_result(
    podium: InProcessPodium, client: PodiumClient, deployed: None
) -> None:
    future = client.task(_enqueue(podium))
    assert future.status() == "pending"
    with pytest.raises(TimeoutError) as e:
        future.result(timeout=0.05)
    assert str(e.value) == f"task {future.id} is still pending after 0.05 s"
    answer = Outcome(
        AttemptOutcome.SUCCEEDED, 200, result=b'{"label": [2]}', result_type="application/json"
    )
    # The dispatcher finishes the task while result() polls.
    with podium.on_answer(f"GET /api/v1/tasks/{future.id}", lambda: _finish(podium, answer)):
        assert future.result(timeout=60) == {"label": [2]}
    task = future.refresh()
    assert isinstance(task, TaskOut)
    assert (task.status, task.result_status) == (TaskStatus.SUCCEEDED, 200)
    assert [a.outcome for a in task.attempt_log or []] == ["succeeded"]


def test_an_endpoint_handle_lists_its_tasks(
    podium: InProcessPodium, client: PodiumClient, deployed: None
) -> None:
    task_id = _enqueue(podium)
    iris = client.use("iris")
    assert repr(iris) == "Endpoint('iris', project=None)"
    assert [t.id for t in iris.tasks().items] == [task_id]


def test_bytes_results_come_from_the_result_url(
    podium: InProcessPodium, client: PodiumClient, deployed: None
) -> None:
    future = client.task(_enqueue(podium))
    _finish(
        podium, Outcome(AttemptOutcome.SUCCEEDED, 200, result=b"\x89PNG", result_type="image/png")
    )
    assert future.result(timeout=10) == b"\x89PNG"


def test_a_failed_task_raises_its_error(
    podium: InProcessPodium, client: PodiumClient, deployed: None
) -> None:
    future = client.task(_enqueue(podium))
    _finish(podium, Outcome(AttemptOutcome.RETRY, 503, reason="HTTP 503: model overloaded"))
    with pytest.raises(TaskFailed) as e:
        future.result(timeout=10)
    assert str(e.value) == (
        f"task {future.id} failed: failed 1 times (dead-lettered); last: HTTP 503: model overloaded"
    )
    assert e.value.task.attempt_log is not None
    assert [a.reason for a in e.value.task.attempt_log] == ["HTTP 503: model overloaded"]


def test_cancel_then_conflict_and_the_list(
    podium: InProcessPodium, client: PodiumClient, deployed: None
) -> None:
    first = client.task(_enqueue(podium, b"1"))
    second = client.task(_enqueue(podium, b"2"))
    cancelled = second.cancel()
    assert cancelled.status is TaskStatus.CANCELLED
    with pytest.raises(Conflict):
        second.cancel()
    with pytest.raises(TaskFailed) as e:
        second.result()
    assert str(e.value) == f"task {second.id} cancelled: cancelled by the caller"
    page = client.tasks("iris", limit=1)
    assert [t.id for t in page.items] == [second.id]
    older = client.tasks("iris", limit=1, cursor=page.next_cursor)
    assert [(t.id, t.queue_position) for t in older.items] == [(first.id, 1)]
    assert [t.id for t in client.tasks("iris", status="cancelled").items] == [second.id]
    with pytest.raises(NotFound):
        client.task("task_0000").status()
    with pytest.raises(NotFound):
        client.tasks("ghost")


def test_a_token_without_invoke_cannot_read_tasks(
    podium: InProcessPodium, client: PodiumClient, deployed: None
) -> None:
    task_id = _enqueue(podium)
    made = client.create_token("reader", scopes=["read"])
    with PodiumClient(podium.url, token=made.token, timeout=10) as reader, pytest.raises(Forbidden):
        reader.task(task_id).status()


def test_callback_key_and_verify_signature(client: PodiumClient, deployed: None) -> None:
    key = client.callback_key("iris")
    assert len(key) == 32 and client.callback_key("iris") == key
    body = b'{"id": "task_1"}'
    assert verify_signature(key, body, sign(key, body))
    new = client.rotate_callback_key("iris")
    assert new != key
    assert not verify_signature(new, body, sign(key, body))
