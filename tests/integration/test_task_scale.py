"""Queue depth alone scales an endpoint from zero, and back to zero once drained (issue 13).

Against a real `podium up` (SQLite) with a `min_replicas: 0` endpoint and no synchronous
traffic at all: tasks are enqueued with a direct store insert (`TaskRepo.enqueue_many` on a
`Database` opened on the server's `home/podium.db`), so scaling up needs only the
controller. The drain needs the dispatcher (`podium.gateway.tasks`): that test is skipped
where the dispatcher is not there.

Every wait is on a condition with a generous deadline; nothing asserts on a duration.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator

import pytest

from podium.client import PodiumClient
from podium.core.access import DEFAULT_PROJECT
from podium.core.phases import EndpointStatus, EventKind
from podium.core.tasks import TaskStatus
from podium.store import Database
from podium.store.task_records import NewTask
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_until

SCALING = {
    "min_replicas": 0,
    "max_replicas": 2,
    "scale_to_zero_after": "2s",
    "stable_window": "2s",
    "panic_window": "1s",
    "scale_down_delay": "1s",
    "stability_period": "1s",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("queue")
    with running_server(tmp / "home", PODIUM_TICK_S="0.2") as s, s.client() as c:
        c.push_model(write_python_bundle(tmp / "slow", sleep_s=0.2), "slow")
        yield s


@pytest.fixture
def store(server: ServerProcess) -> Iterator[Database]:
    """The server's own store, opened beside it (SQLite in WAL mode takes both)."""
    db = Database(f"sqlite:///{server.home / 'podium.db'}")
    yield db
    db.dispose()


def deploy_at_zero(c: PodiumClient, name: str) -> None:
    c.deploy({"name": name, "model": "slow", "framework": "python", "scaling": SCALING})
    c.wait_for(name, {EndpointStatus.SCALED_TO_ZERO}, timeout=60)


def enqueue(db: Database, name: str, n: int) -> list[str]:
    with db.unit_of_work() as uow:
        return list(
            uow.tasks.enqueue_many(
                [
                    NewTask(
                        name,
                        DEFAULT_PROJECT,
                        "POST",
                        "/",
                        b'{"inputs": %d}' % i,
                        headers=(("content-type", "application/json"),),
                        lease_s=60.0,
                    )
                    for i in range(n)
                ]
            )
        )


def scaled(c: PodiumClient, name: str) -> list[str]:
    return [e.message for e in c.events(name) if e.kind is EventKind.SCALED]


def test_queued_tasks_alone_scale_an_endpoint_from_zero(
    server: ServerProcess, store: Database
) -> None:
    with server.client() as c:
        deploy_at_zero(c, "waiting")
        assert scaled(c, "waiting") == []
        enqueue(store, "waiting", 6)
        wait_until(lambda: c.endpoint("waiting").desired_replicas >= 1, 60, "a scale-up from zero")
        c.wait_for("waiting", {EndpointStatus.RUNNING}, timeout=120)
        ups = [m for m in scaled(c, "waiting") if m.startswith("scaled 0→")]
        assert len(ups) == 1, scaled(c, "waiting")
        assert "queued tasks (oldest " in ups[0] and "with no ready replica" in ups[0]
        # Queued tasks are activity: past scale_to_zero_after (2 s) with nothing else, the
        # endpoint stays up while they wait (where no dispatcher runs them, they all do).
        time.sleep(3)
        with store.unit_of_work(read_only=True) as uow:
            depth = uow.tasks.depth().get("waiting")
        if depth is not None and depth.pending == 6:
            assert c.endpoint("waiting").desired_replicas >= 1
            assert not any("→0" in m for m in scaled(c, "waiting"))
        c.delete("waiting")


@pytest.mark.skipif(
    importlib.util.find_spec("podium.gateway.tasks") is None,
    reason="the dispatcher (podium.gateway.tasks) is not in this tree",
)
def test_a_drained_queue_scales_the_endpoint_back_to_zero(
    server: ServerProcess, store: Database
) -> None:
    with server.client() as c:
        deploy_at_zero(c, "drain")
        ids = enqueue(store, "drain", 8)
        c.wait_for("drain", {EndpointStatus.RUNNING}, timeout=120)

        def statuses() -> set[TaskStatus]:
            with store.unit_of_work(read_only=True) as uow:
                return {uow.tasks.get(i).status for i in ids}

        wait_until(lambda: statuses() == {TaskStatus.SUCCEEDED}, 120, "every task succeeded")
        c.wait_for("drain", {EndpointStatus.SCALED_TO_ZERO}, timeout=60)
        messages = scaled(c, "drain")
        assert any(m.startswith("scaled 0→") and "queued task" in m for m in messages)
        assert any("→0: idle for " in m for m in messages), messages
        with store.unit_of_work(read_only=True) as uow:
            results = [uow.tasks.get(i) for i in ids]
        assert [r.result_status for r in results] == [200] * 8
        c.delete("drain")
