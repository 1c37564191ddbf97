"""The controller's reaction to a hung replica, on fake time (tests/unit/control/fakes.py).
The whole path with real processes is tests/integration/test_hung_model.py."""

from __future__ import annotations

from pathlib import Path

import httpx

from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind, ExitReason
from podium.store import Database
from tests.support.fake_replicas import HUNG, FakeReplicas
from tests.unit.control.fakes import FakeGateway, Harness, db, events, sqlite_url, status

__all__ = ["db", "sqlite_url"]


def test_a_replica_that_says_hung_leaves_routing_at_once_and_is_replaced(
    tmp_path: Path, db: Database
) -> None:
    replicas = FakeReplicas()
    h = Harness(tmp_path, db, replicas)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert h.routed() == ["r1.test", "r2.test"]
        replicas.hung.add("r1.test")
        await h.passes(ctl, 1)  # one hung answer is enough: the grace was the wait
        assert h.routed() == ["r2.test"]
        assert h.backend.killed == [(h.backend.started[0].replica_id, ExitReason.HUNG)]
        await h.passes(ctl, 3)  # the exit is seen, a replacement starts and becomes ready

    h.run(steps)
    assert set(replicas.asked) == {"12"}  # timeout_s 2 + grace 10
    first = h.backend.started[0].replica_id
    (hung,) = events(db, EventKind.REPLICA_HUNG)
    assert hung.message == f"replica {first} was restarted: {HUNG['detail']}"
    assert hung.data["reason"] == "hung"
    assert (hung.data["oldest_call_s"], hung.data["limit_s"]) == (13.0, 12.0)
    (restarted,) = events(db, EventKind.REPLICA_RESTARTED)
    assert h.backend.started[2].replica_id in restarted.message
    assert h.routed() == ["r2.test", "r3.test"]
    assert status(db) is EndpointStatus.RUNNING


def test_one_poison_input_among_good_traffic_never_fails_the_endpoint(
    tmp_path: Path, db: Database
) -> None:
    replicas, gateway = FakeReplicas(), FakeGateway()
    h = Harness(tmp_path, db, replicas, gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        for _ in range(5):  # more hangs than the crash loop threshold (3)
            gateway.serve(1)  # the revision served good requests between the hangs
            replicas.hung.add(h.routed()[0])
            await h.passes(ctl, 4)

    h.run(steps)
    assert len(events(db, EventKind.REPLICA_HUNG)) == 5
    assert status(db) is EndpointStatus.RUNNING
    assert len(h.routed()) == 2


def test_a_model_that_hangs_on_every_input_fails_the_endpoint(tmp_path: Path, db: Database) -> None:
    # Successes of another revision (an old one, during a rollout) do not hide it either.
    replicas, gateway = FakeReplicas(), FakeGateway()
    h = Harness(tmp_path, db, replicas, gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        for _ in range(3):  # the crash loop threshold
            gateway.serve(0, 10)
            replicas.hung.add(h.routed()[0])
            await h.passes(ctl, 4)

    h.run(steps)
    assert len(events(db, EventKind.REPLICA_HUNG)) == 3
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get("spin")
    assert ep.status is EndpointStatus.FAILED
    assert ep.status_reason is not None
    assert "crashed or hung 3 times while serving" in ep.status_reason
    assert str(HUNG["detail"]) in ep.status_reason


def test_a_replica_that_answers_no_probe_past_timeout_and_grace_is_hung(
    tmp_path: Path, db: Database
) -> None:
    replicas = FakeReplicas()
    h = Harness(tmp_path, db, replicas)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        replicas.silent.add("r2.test")  # its event loop is blocked (a call holding the GIL)
        await h.passes(ctl, 12)  # silent for 11 s: under timeout_s 2 + grace 10
        assert h.backend.killed == []
        await h.passes(ctl, 1)  # 12 s
        assert [reason for _, reason in h.backend.killed] == [ExitReason.HUNG]
        await h.passes(ctl, 3)

    h.run(steps)
    (hung,) = events(db, EventKind.REPLICA_HUNG)
    assert "no answer to liveness probes for 12s" in hung.message
    assert (hung.data["unanswered_s"], hung.data["limit_s"]) == (12, 12)
    assert len(events(db, EventKind.REPLICA_RESTARTED)) == 1
    assert h.routed() == ["r1.test", "r3.test"]


def test_a_long_call_within_the_timeout_is_not_a_hang(tmp_path: Path, db: Database) -> None:
    replicas = FakeReplicas()
    h = Harness(tmp_path, db, replicas)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        replicas.silent.add("r2.test")
        await h.passes(ctl, 11)  # more unanswered probes than the failure threshold (3)
        replicas.silent.clear()  # the call finished
        await h.passes(ctl, 20)

    h.run(steps)
    assert h.backend.killed == []
    assert events(db, EventKind.REPLICA_HUNG) == []
    assert h.routed() == ["r1.test", "r2.test"]


def test_other_liveness_failures_stay_unhealthy(tmp_path: Path, db: Database) -> None:
    replicas = FakeReplicas()

    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.host == "r1.test" and request.url.path == "/health/live":
            return httpx.Response(503, json={"status": 503, "detail": "sad"})
        return replicas(request)

    h = Harness(tmp_path, db, broken)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 6)

    h.run(steps)
    assert events(db, EventKind.REPLICA_HUNG) == []
    unhealthy = events(db, EventKind.REPLICA_UNHEALTHY)
    assert unhealthy and "liveness probe failed 3 times: HTTP 503" in unhealthy[0].message
