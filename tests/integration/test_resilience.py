"""Under closed-loop load: a replica killed with SIGKILL, and a rolling model update."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from podium.core.phases import EventKind, ReplicaState
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, run_load, wait_running, wait_until


def ready_ids(server: ServerProcess, name: str) -> set[str]:
    with server.client() as c:
        ep = c.endpoint(name)
    return {r.replica_id for r in ep.replicas if r.state is ReplicaState.READY}


def test_sigkill_one_of_two_replicas_under_load_fails_only_its_requests(
    server: ServerProcess, tmp_path: Path
) -> None:
    with server.client() as c:
        c.push_model(write_python_bundle(tmp_path / "echo", sleep_s=0.002), "chaos-echo")
        c.deploy(
            {
                "name": "chaos",
                "model": "chaos-echo",
                "framework": "python",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "chaos")
        wait_until(lambda: len(ready_ids(server, "chaos")) == 2, what="2 ready replicas")
        victim = c.endpoint("chaos").replicas[0]
    assert victim.pid is not None

    def kill_victim(started: float) -> None:
        time.sleep(max(0.0, started + 5 - time.monotonic()))
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]

    report = run_load(
        f"{server.url}/endpoints/chaos/",
        {"inputs": "ping"},
        seconds=20,
        clients=8,
        during=kill_victim,
    )
    # Only the requests the victim was serving when it died fail, with a 502 that says so:
    # they may have reached the model, so they are never re-sent (a poison request would
    # crash every replica in turn). Everything else is retried elsewhere or served.
    crashed = "the replica crashed while serving this request"
    assert all(crashed in f for f in report.failures), report.failures[:5]
    assert len(report.failures) <= 8  # at most one per client
    assert report.ok > 200
    assert report.replicas[victim.replica_id] > 0  # it did serve before it was killed

    wait_until(
        lambda: len(ids := ready_ids(server, "chaos")) == 2 and victim.replica_id not in ids,
        what="a replacement replica",
    )
    with server.client() as c:
        kinds = [e.kind for e in c.events("chaos")]
    assert EventKind.REPLICA_CRASHED in kinds
    assert EventKind.REPLICA_RESTARTED in kinds


def test_rolling_update_under_load_fails_no_request(server: ServerProcess, tmp_path: Path) -> None:
    with server.client() as c:
        c.push_model(write_python_bundle(tmp_path / "v1", version=1, sleep_s=0.002), "roller")
        c.push_model(write_python_bundle(tmp_path / "v2", version=2, sleep_s=0.002), "roller")
        c.deploy(
            {
                "name": "roll",
                "model": "roller:1",
                "framework": "python",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "roll")

    def update(started: float) -> None:
        time.sleep(max(0.0, started + 4 - time.monotonic()))
        with server.client() as c:
            c.update("roll", {"model": "roller:2"})

    report = run_load(
        f"{server.url}/endpoints/roll/",
        {"inputs": "ping"},
        seconds=20,
        clients=8,
        during=update,
        body_key=lambda body: str(body["version"]),
    )
    assert report.failures == [], report.failures[:5]
    assert set(report.bodies) == {"1", "2"}
    assert report.last_body == "2"

    with server.client() as c:
        ep = wait_running(c, "roll")
        assert ep.revision == 2
        assert {r.revision for r in ep.replicas} == {2}
        assert len(c.revisions("roll")) == 2
