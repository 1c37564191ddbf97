"""The async route (`gateway.task_intake`): a real gateway (ASGI, in the test's loop) with
the access stage and the record stage, storing tasks in a real SQLite queue.

Each bad task header is a 400 naming it; the same key and body is the same task (202 with
`Idempotency-Replayed`), another body a 409; `tasks.max_pending` a 429; only safe headers
travel with the task; refusals of the stages are those of a synchronous call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from podium.core.access import Scope, TokenDirectory
from podium.core.phases import EndpointStatus
from podium.core.request_record import RecordBuffer, RequestRecord
from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
from podium.core.settings import GatewaySettings, TaskSettings
from podium.core.task_spec import TaskSpec
from podium.core.tasks import TaskStatus
from podium.gateway import Gateway
from podium.gateway.access import AccessStage
from podium.gateway.task_intake import BadHeader, task_options
from podium.gateway.task_store import DatabaseTaskStore
from podium.store import Database
from tests.unit.gateway.access_kit import token

REPLICA = ReplicaRoute("r0", "127.0.0.1", 9, revision=1)  # never called: tasks only queue


@dataclass
class Intake:
    client: httpx.AsyncClient
    db: Database
    records: RecordBuffer
    auth: dict[str, str]
    reader: dict[str, str]
    woken: list[int]


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Intake]:
    db = Database(f"sqlite:///{tmp_path}/tasks.db")
    db.migrate()
    directory = TokenDirectory()
    invoker, _ = token(directory, "i", [Scope.INVOKE], ["default"])
    reader, _ = token(directory, "r", [Scope.READ], ["default"])
    holder = InProcessRoutingSource()
    holder.publish(
        {
            "echo": EndpointRoute(
                "echo",
                EndpointStatus.RUNNING,
                (REPLICA,),
                timeout_s=5.0,
                tasks=TaskSpec(max_attempts=4, max_pending=3, result_ttl_s=600),
            )
        }
    )
    records = RecordBuffer(100)
    gateway = Gateway(
        holder,
        GatewaySettings(max_body_bytes=1000),
        stages=[AccessStage(directory, auth=True)],
        records=records,
        tasks=DatabaseTaskStore(db),
        task_settings=TaskSettings(callback_hosts=("hooks.example.com",)),
    )
    woken: list[int] = []
    assert gateway.task_intake is not None
    gateway.task_intake.on_enqueued = lambda: woken.append(1)
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield Intake(
            client,
            db,
            records,
            {"authorization": f"Bearer {invoker}"},
            {"authorization": f"Bearer {reader}"},
            woken,
        )
    await gateway.shutdown()
    db.dispose()


async def test_a_task_is_queued_with_its_path_body_options_and_safe_headers_only(
    intake: Intake,
) -> None:
    headers = {
        **intake.auth,
        "content-type": "application/json",
        "cookie": "podium_session=secret",
        "x-podium-priority": "7",
        "x-podium-task-ttl": "120",
        "x-podium-callback-url": "https://hooks.example.com/done",
        "x-other": "not forwarded",
    }
    r = await intake.client.post(
        "/endpoints/echo/async/predict?x=1", content=b"{}", headers=headers
    )
    assert r.status_code == 202, r.text
    doc = r.json()
    task_id = doc["task_id"]
    assert doc == {
        "task_id": task_id,
        "status_url": f"/api/v1/tasks/{task_id}",
        "status": "pending",
    }
    assert r.headers["location"] == f"/api/v1/tasks/{task_id}"
    assert "idempotency-replayed" not in r.headers
    with intake.db.unit_of_work() as uow:
        task = uow.tasks.get(task_id)
        (claimed,) = uow.tasks.claim("t", {"echo": 5})
    assert (task.status, task.priority, task.max_attempts) == (TaskStatus.PENDING, 7, 4)
    assert task.path == "/predict?x=1" and task.method == "POST"
    assert task.expires_at - task.created_at == pytest.approx(120.0)
    assert task.callback_url == "https://hooks.example.com/done"
    assert task.token_id is not None
    assert claimed.body == b"{}"
    # what describes the body and the answer wanted; never credentials, nor other headers
    assert dict(claimed.headers) == {"accept": "*/*", "content-type": "application/json"}
    # the lease: timeout_s (5) + 30 s, not the default 90 s
    assert claimed.lease_until - claimed.pending_since == pytest.approx(35.0, abs=1.0)
    assert intake.woken == [1]
    (record,) = [RequestRecord.from_row(row) for row in intake.records.drain(10)]
    assert (record.status, record.task_id, record.route) == (202, task_id, "/predict")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Podium-Priority", "10"),
        ("X-Podium-Priority", "-1"),
        ("X-Podium-Priority", "high"),
        ("X-Podium-Task-Ttl", "59"),
        ("X-Podium-Task-Ttl", str(31 * 86400)),
        ("X-Podium-Task-Ttl", "nan"),
        ("X-Podium-Callback-Url", "https://evil.example.net/x"),
        ("X-Podium-Callback-Url", "not a url"),
        ("Idempotency-Key", "k" * 129),
    ],
)
async def test_each_bad_task_header_is_a_400_naming_it(
    intake: Intake, header: str, value: str
) -> None:
    r = await intake.client.post(
        "/endpoints/echo/async/", content=b"{}", headers={**intake.auth, header: value}
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["header"] == header
    with intake.db.unit_of_work() as uow:
        assert uow.tasks.depth() == {}


def test_task_options_parse_defaults_and_refuse_non_ascii() -> None:
    assert task_options([], ()).priority == 5
    assert task_options([], ()).ttl_s is None
    with pytest.raises(BadHeader) as e:
        task_options([(b"idempotency-key", "clé".encode())], ())
    assert e.value.header == "Idempotency-Key"


async def test_an_idempotency_key_finds_the_same_task_and_refuses_another_body(
    intake: Intake,
) -> None:
    headers = {**intake.auth, "idempotency-key": "order-17"}
    first = await intake.client.post("/endpoints/echo/async/", content=b"a", headers=headers)
    again = await intake.client.post("/endpoints/echo/async/", content=b"a", headers=headers)
    other = await intake.client.post("/endpoints/echo/async/", content=b"b", headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 409)
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.headers["idempotency-replayed"] == "true"
    assert other.json()["field"] == "Idempotency-Key"
    assert intake.woken == [1]  # a replay wakes nobody


async def test_more_than_max_pending_is_a_429_but_a_replay_is_not(intake: Intake) -> None:
    keyed = {**intake.auth, "idempotency-key": "k1"}
    for i in range(3):
        r = await intake.client.post(
            "/endpoints/echo/async/",
            content=str(i).encode(),
            headers=keyed if i == 0 else intake.auth,
        )
        assert r.status_code == 202
    full = await intake.client.post("/endpoints/echo/async/", content=b"x", headers=intake.auth)
    assert full.status_code == 429
    assert full.json()["field"] == "tasks.max_pending"
    assert full.headers["retry-after"] == "5"
    replay = await intake.client.post("/endpoints/echo/async/", content=b"0", headers=keyed)
    assert replay.status_code == 202


async def test_refusals_are_those_of_a_synchronous_call(intake: Intake) -> None:
    client = intake.client
    assert (await client.post("/endpoints/echo/async/", content=b"{}")).status_code == 401
    assert (
        await client.post("/endpoints/echo/async/", content=b"{}", headers=intake.reader)
    ).status_code == 403
    big = await client.post("/endpoints/echo/async/", content=b"x" * 1001, headers=intake.auth)
    assert big.status_code == 413
    get = await client.get("/endpoints/echo/async/", headers=intake.auth)
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    missing = await client.post("/endpoints/nope/async/", content=b"{}", headers=intake.auth)
    assert missing.status_code == 404
    internal = await client.post("/endpoints/echo/async/metrics", content=b"", headers=intake.auth)
    assert internal.status_code == 404
    with intake.db.unit_of_work() as uow:
        assert uow.tasks.depth() == {}
