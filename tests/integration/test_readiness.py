"""Readiness on a real server: a ready replica whose runtime says it is not ready (the
python model's `health()`) leaves routing without being restarted, and serves again once it
is ready."""

from __future__ import annotations

from pathlib import Path

import httpx

from podium.core.phases import EventKind, ReplicaState
from tests.support.lifecycle_models import write_lifecycle_bundle
from tests.support.server import ServerProcess, wait_running, wait_until

READINESS = {"period_s": 0.2, "timeout_s": 1, "failure_threshold": 2}


def states(server: ServerProcess, name: str) -> dict[str, ReplicaState]:
    with server.client() as c:
        return {r.replica_id: r.state for r in c.endpoint(name).replicas}


def served_by(url: str, n: int, headers: dict[str, str]) -> set[str]:
    with httpx.Client(timeout=60, headers=headers) as http:
        return {http.post(url, json={"inputs": i}).headers["x-podium-replica"] for i in range(n)}


def test_a_replica_failing_readiness_leaves_routing_and_comes_back(
    server: ServerProcess, tmp_path: Path
) -> None:
    flags = tmp_path / "not-ready"
    flags.mkdir()
    with server.client() as c:
        c.push_model(write_lifecycle_bundle(tmp_path / "m"), "flaky-ready")
        c.deploy(
            {
                "name": "flaky-ready",
                "model": "flaky-ready",
                "framework": "python",
                "env": {"NOT_READY_DIR": str(flags)},
                "readiness": READINESS,
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "flaky-ready")
        wait_until(
            lambda: list(states(server, "flaky-ready").values()) == [ReplicaState.READY] * 2,
            what="2 ready replicas",
        )
        sick, well = c.endpoint("flaky-ready").replicas
    assert sick.pid is not None
    url = f"{server.url}/endpoints/flaky-ready/"

    (flags / str(sick.pid)).touch()  # its health() now says "not ready"
    wait_until(
        lambda: states(server, "flaky-ready")[sick.replica_id] is not ReplicaState.READY,
        timeout=30,
        what="the replica out of routing",
    )
    # The routing table follows within the controller's pass; then it stays out.
    wait_until(
        lambda: served_by(url, 5, server.headers) == {well.replica_id}, timeout=30, what="unrouted"
    )
    assert served_by(url, 20, server.headers) == {well.replica_id}
    with server.client() as c:
        out = [e for e in c.events("flaky-ready") if e.kind is EventKind.REPLICA_UNHEALTHY]
    assert [e.data["replica_id"] for e in out] == [sick.replica_id]
    assert "taken out of routing: readiness probe failed 2 times" in out[0].message

    (flags / str(sick.pid)).unlink()
    wait_until(
        lambda: states(server, "flaky-ready")[sick.replica_id] is ReplicaState.READY,
        what="the replica back in routing",
    )
    wait_until(
        lambda: sick.replica_id in served_by(url, 10, server.headers),
        what="the replica serving again",
    )
    with server.client() as c:
        events = c.events("flaky-ready")
        (back,) = [r for r in c.endpoint("flaky-ready").replicas if r.replica_id == sick.replica_id]
    # The same process came back: not restarted, nothing crashed.
    assert back.pid == sick.pid
    ready = [e.data["replica_id"] for e in events if e.kind is EventKind.REPLICA_READY]
    assert ready.count(sick.replica_id) == 2
    assert not [
        e for e in events if e.kind in (EventKind.REPLICA_RESTARTED, EventKind.REPLICA_CRASHED)
    ]
