"""The task dispatcher (`gateway.tasks`): a real gateway (in the test's loop, with the
access and record stages) in front of a real stand-in replica, and a real SQLite queue on a
fake clock. Rounds are run one at a time (`run_once`).

Covered: the outcome rule, the slot caps, a task run through the pipeline (its request
record names it, the creator's credentials never reach the replica), cancelling a running
task (the upstream request is dropped), and a dispatcher that stops mid-task: its lease runs
out and another dispatcher runs the task again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from podium.core.access import Scope, TokenDirectory
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus
from podium.core.request_record import RecordBuffer, RequestRecord
from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
from podium.core.settings import GatewaySettings, TaskSettings
from podium.core.task_spec import TaskSpec
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.gateway import Gateway
from podium.gateway.access import AccessStage
from podium.gateway.task_store import DatabaseTaskStore
from podium.gateway.tasks import (
    Answer,
    TaskDispatcher,
    inline,
    internal_scope,
    outcome_of,
    task_slots,
)
from podium.store import Database
from podium.store.task_records import Claimed
from tests.unit.gateway.access_kit import token
from tests.unit.gateway.conftest import Replica, Servers


def _route(replicas: tuple[ReplicaRoute, ...], **kw: object) -> EndpointRoute:
    fields: dict[str, object] = {
        "status": EndpointStatus.RUNNING,
        "timeout_s": 5.0,
        "max_concurrency": 2,
        "tasks": TaskSpec(max_attempts=3, lease_s=10.0),
    }
    fields.update(kw)
    return EndpointRoute("echo", replicas=replicas, **fields)  # type: ignore[arg-type]


# -- the outcome rule and the slots (no I/O) --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, AttemptOutcome.SUCCEEDED),
        (201, AttemptOutcome.SUCCEEDED),
        (400, AttemptOutcome.FAILED),
        (404, AttemptOutcome.FAILED),
        (422, AttemptOutcome.FAILED),
        (500, AttemptOutcome.RETRY),
        (502, AttemptOutcome.RETRY),
        (503, AttemptOutcome.RETRY),
        (504, AttemptOutcome.RETRY),
        (0, AttemptOutcome.RETRY),
    ],
)
def test_the_outcome_rule(status: int, kind: AttemptOutcome) -> None:
    body = bytearray(b'{"detail": "why"}')
    outcome = outcome_of(Answer(status, "application/json", body))
    assert outcome.kind is kind
    assert outcome.status == (status or None)
    if kind is AttemptOutcome.SUCCEEDED:
        assert (outcome.result, outcome.result_type) == (bytes(body), "application/json")
    elif status:
        assert outcome.reason == f"HTTP {status}: why"


def test_a_result_too_large_to_keep_fails_the_task() -> None:
    outcome = outcome_of(Answer(200, "text/plain", bytearray(b"x"), too_large=True))
    assert outcome.kind is AttemptOutcome.FAILED


@pytest.mark.parametrize(
    ("content_type", "size", "kept"),
    [
        ("application/json", 10, True),
        ("application/json; charset=utf-8", 10, True),
        ("application/problem+json", 10, True),
        ("application/json", 11, False),  # over inline_result_bytes
        ("image/png", 1, False),
        (None, 1, False),
    ],
)
def test_only_small_json_results_are_kept_inline(
    content_type: str | None, size: int, kept: bool
) -> None:
    outcome = outcome_of(Answer(200, content_type, bytearray(b"1" * size)))
    assert inline(outcome, 10) is kept


def test_task_slots_are_a_share_of_the_ready_replicas_slots_at_least_one() -> None:
    one = ReplicaRoute("a", "127.0.0.1", 1, 1)
    two = ReplicaRoute("b", "127.0.0.1", 2, 1)
    assert task_slots(_route((one, two), max_concurrency=8), 0.5) == 8
    assert task_slots(_route((one,), max_concurrency=3), 0.5) == 2  # ceil(1.5)
    assert task_slots(_route((one,), max_concurrency=1), 0.1) == 1  # at least one
    assert task_slots(_route(()), 0.5) == 0  # none ready: wait for the autoscaler
    assert task_slots(_route((one,), status=EndpointStatus.PAUSED), 0.5) == 0


# -- a dispatcher in front of a real replica ---------------------------------------------------


@dataclass
class Rig:
    client: httpx.AsyncClient
    db: Database
    clock: FakeClock
    holder: InProcessRoutingSource
    gateway: Gateway
    replica: Replica
    records: RecordBuffer
    auth: dict[str, str]
    directory: TokenDirectory
    token_id: str

    def dispatcher(
        self, save_result: Callable[[Claimed, bytes, str | None], str] | None = None
    ) -> TaskDispatcher:
        return TaskDispatcher(
            self.gateway.pipeline,
            self.holder,
            DatabaseTaskStore(self.db),
            TaskSettings(slot_share=0.5, sweep_s=0.0),
            save_result=save_result,
            wall_clock=lambda: self.clock.now().timestamp(),
            tokens=self.directory,
        )

    async def enqueue(self, path: str, body: bytes = b'{"inputs": 1}') -> str:
        r = await self.client.post(f"/endpoints/echo/async{path}", content=body, headers=self.auth)
        assert r.status_code == 202, r.text
        return str(r.json()["task_id"])


@pytest.fixture
def replica() -> Iterator[Replica]:
    servers = Servers("http1")
    (one,) = servers.replicas(1)
    yield one
    servers.close()


@pytest.fixture
async def rig(tmp_path: Path, replica: Replica) -> AsyncIterator[Rig]:
    clock = FakeClock(1_700_000_000.0)
    db = Database(f"sqlite:///{tmp_path}/tasks.db", clock=clock)
    db.migrate()
    directory = TokenDirectory()
    bearer, token_id = token(directory, "creator", [Scope.INVOKE], ["default"])
    holder = InProcessRoutingSource()
    holder.publish({"echo": _route((replica.route,))})  # 2 x 0.5 x 1: one task at a time
    records = RecordBuffer(100)
    gateway = Gateway(
        holder,
        GatewaySettings(),
        stages=[AccessStage(directory, auth=True)],
        records=records,
        tasks=DatabaseTaskStore(db),
    )
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield Rig(
            client,
            db,
            clock,
            holder,
            gateway,
            replica,
            records,
            {"authorization": f"Bearer {bearer}", "content-type": "application/json"},
            directory,
            token_id,
        )
    await gateway.shutdown()
    db.dispose()


async def _drain(dispatcher: TaskDispatcher) -> None:
    """Wait for the calls the dispatcher runs to end (bounded)."""
    for _ in range(1000):
        if not dispatcher.running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the dispatched calls did not end")


async def test_a_task_runs_through_the_pipeline_and_its_record_names_it(rig: Rig) -> None:
    task_id = await rig.enqueue("/predict?q=1")
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    await _drain(dispatcher)
    with rig.db.unit_of_work() as uow:
        task = uow.tasks.get(task_id)
        (attempt,) = uow.tasks.attempts(task_id)
    assert task.status is TaskStatus.SUCCEEDED
    assert (task.result_status, task.result_type) == (200, "application/json")
    assert task.result is not None
    doc = json.loads(task.result)
    assert (doc["path"], doc["query"], doc["body"]) == ("/predict", "q=1", '{"inputs": 1}')
    headers = dict(doc["headers"])
    assert headers["x-request-id"] == f"{task_id}-1"
    assert "authorization" not in headers  # the creator's token never reaches a replica
    assert (attempt.outcome, attempt.status) == (AttemptOutcome.SUCCEEDED, 200)
    enqueued, ran = (RequestRecord.from_row(r) for r in rig.records.drain(10))
    assert (enqueued.status, enqueued.task_id) == (202, task_id)
    assert (ran.status, ran.task_id, ran.request_id) == (200, task_id, f"{task_id}-1")
    assert ran.token_id == enqueued.token_id and ran.token_id is not None
    assert ran.replica_id == rig.replica.id


async def test_a_tasks_record_counts_its_wait_in_the_queue(rig: Rig) -> None:
    task_id = await rig.enqueue("/predict")
    rig.clock.advance(7)  # it waited 7 s for a slot
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    await _drain(dispatcher)
    _, ran = (RequestRecord.from_row(r) for r in rig.records.drain(10))
    assert ran.task_id == task_id
    assert 7000.0 <= ran.queue_ms < 7000.0 + ran.latency_ms  # plus any hold in the gateway


async def test_slots_cap_the_tasks_running_and_a_cancel_drops_the_upstream_call(
    rig: Rig,
) -> None:
    first = await rig.enqueue("/slow")
    second = await rig.enqueue("/slow")
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1  # one slot: ceil(0.5 x 2 x 1)
    assert await dispatcher.run_once() == 0
    assert await asyncio.to_thread(rig.replica.app.holding.wait, 10)
    with rig.db.unit_of_work() as uow:
        assert uow.tasks.get(first).status is TaskStatus.RUNNING
        assert uow.tasks.get(second).status is TaskStatus.PENDING
        assert uow.task_views.position(uow.tasks.get(second)) == 1
        uow.task_views.cancel(first)
    await dispatcher.run_once()  # sees it cancelled: its call is cancelled
    assert await asyncio.to_thread(rig.replica.app.disconnected.wait, 10)
    assert await dispatcher.run_once() == 1  # its slot is free: the next one runs
    with rig.db.unit_of_work() as uow:
        cancelled = uow.tasks.get(first)
        (attempt,) = uow.tasks.attempts(first)
        assert uow.tasks.get(second).status is TaskStatus.RUNNING
    assert cancelled.status is TaskStatus.CANCELLED
    assert attempt.outcome is AttemptOutcome.CANCELLED
    rig.replica.app.release()
    await _drain(dispatcher)
    with rig.db.unit_of_work() as uow:
        assert uow.tasks.get(first).status is TaskStatus.CANCELLED  # its late end is ignored
        assert uow.tasks.get(second).status is TaskStatus.SUCCEEDED


async def test_a_stopped_dispatcher_gives_its_running_tasks_back_at_once(rig: Rig) -> None:
    """A server that stops (SIGTERM, a restart) does not leave its tasks to their leases:
    they are pending again when `stop` returns, and the next dispatcher runs them at once
    (no clock moves). The stopped attempt stays counted, `released`."""
    task_id = await rig.enqueue("/slow")
    gone = rig.dispatcher()
    assert await gone.run_once() == 1
    assert await asyncio.to_thread(rig.replica.app.holding.wait, 10)
    await gone.stop()  # its call is cut, nothing recorded; the task goes back
    with rig.db.unit_of_work() as uow:
        assert uow.tasks.get(task_id).status is TaskStatus.PENDING
    rig.replica.app.release()
    other = rig.dispatcher()
    assert await other.run_once() == 1  # no lease to wait for
    await _drain(other)
    with rig.db.unit_of_work() as uow:
        task = uow.tasks.get(task_id)
        attempts = uow.tasks.attempts(task_id)
    assert (task.status, task.attempts) == (TaskStatus.SUCCEEDED, 2)
    assert [a.outcome for a in attempts] == [AttemptOutcome.RELEASED, AttemptOutcome.SUCCEEDED]
    assert [a.owner for a in attempts] == [gone.owner, other.owner]


async def test_a_large_or_binary_result_is_saved_as_a_file(rig: Rig, tmp_path: Path) -> None:
    saved: dict[str, tuple[str, bytes, str | None]] = {}

    def save(task: Claimed, data: bytes, content_type: str | None) -> str:
        file_id = f"file_{len(saved)}"
        saved[file_id] = (task.id, data, content_type)
        return file_id

    task_id = await rig.enqueue("/big?100000")
    dispatcher = rig.dispatcher(save_result=save)
    assert await dispatcher.run_once() == 1
    await _drain(dispatcher)
    with rig.db.unit_of_work() as uow:
        task = uow.tasks.get(task_id)
    assert (task.status, task.result, task.result_file) == (TaskStatus.SUCCEEDED, None, "file_0")
    owner, data, _ = saved["file_0"]
    assert owner == task_id and len(data) == 100000


def test_a_dispatched_call_waits_for_a_slot_no_longer_than_its_lease_allows() -> None:
    """Held by the activator, an attempt must end before its lease does, or another
    dispatcher would run the task meanwhile: the call carries `X-Podium-Wait-Timeout` =
    lease left - timeout_s - 5 s (never below 0)."""
    from podium.core.tasks import TaskId
    from podium.store.task_records import Claimed

    def claimed(lease_until: float) -> Claimed:
        return Claimed(
            id=TaskId("task_1"), endpoint="e", project="default", method="POST", path="/x?a=1",
            headers=(("content-type", "application/json"),), body=b"{}", attempt=2,
            max_attempts=3, lease_until=lease_until, created_at=0.0, token_id=None,
            job_id=None, line=None,
        )  # fmt: skip

    def wait_of(scope: dict[str, object]) -> bytes:
        headers = scope["headers"]
        assert isinstance(headers, list)
        return dict(headers)[b"x-podium-wait-timeout"]

    scope = internal_scope(claimed(1090.0), 1000.0, 60.0)
    assert wait_of(scope) == b"25.000"
    assert dict(scope["headers"])[b"x-request-id"] == b"task_1-2"  # type: ignore[call-overload]
    assert (scope["path"], scope["query_string"]) == ("/x", b"a=1")
    assert wait_of(internal_scope(claimed(1010.0), 1000.0, 60.0)) == b"0.000"


async def test_a_task_for_a_replicas_internal_route_fails_without_reaching_it(rig: Rig) -> None:
    """A job's `path` is the caller's: a task naming `/metrics` or `/podium/…` (also
    percent-encoded) fails with 404 and is never forwarded, like the synchronous route."""
    from podium.store.task_records import NewTask

    with rig.db.unit_of_work() as uow:
        ids = [
            uow.tasks.enqueue(
                NewTask(endpoint="echo", project="default", method="POST", path=p, body=b"{}")
            )[0].id
            for p in ("/metrics", "/%70odium/info", "/a/../health/ready")
        ]
    dispatcher = rig.dispatcher()
    claimed = 0
    for _ in range(3):  # as many rounds as the endpoint's task slots need
        claimed += await dispatcher.run_once()
        await _drain(dispatcher)
    assert claimed == 3
    with rig.db.unit_of_work() as uow:
        tasks = [uow.tasks.get(i) for i in ids]
    assert [(t.status, t.result_status, t.attempts) for t in tasks] == [
        (TaskStatus.FAILED, 404, 1)
    ] * 3


async def test_a_task_whose_creators_token_was_revoked_fails_without_running(rig: Rig) -> None:
    """A task runs as its creator, checked when it runs: once the token is revoked its
    queued tasks fail with 401 (not retried) and never reach the replica."""
    task_id = await rig.enqueue("/echo")
    rig.directory.drop(rig.token_id)
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    await _drain(dispatcher)
    with rig.db.unit_of_work() as uow:
        task = uow.tasks.get(task_id)
    assert (task.status, task.result_status, task.attempts) == (TaskStatus.FAILED, 401, 1)
    assert "revoked" in (task.error or "")
