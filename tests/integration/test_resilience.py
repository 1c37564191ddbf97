"""A replica killed with SIGKILL (between requests, and under closed-loop load), and a
rolling model update under load.

The gateway re-sends a request whose connection to a replica failed before the request
reached it (refused, reset unread) to another replica at once, and counts it in
`podium_gateway_retries`. Without that retry the client would still get its 200 (the
request waits for the controller's next routing table and is admitted again), so the tests
read the gateway's `/metrics` to tell a retry from a second admission.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.core.phases import EventKind, ReplicaState
from tests.support.models import write_python_bundle
from tests.support.server import (
    ServerProcess,
    run_load,
    running_server,
    wait_running,
    wait_until,
)


def gateway_counters(server: ServerProcess, endpoint: str) -> dict[str, float]:
    """The gateway's per-endpoint counters from `/metrics` (`replica_failures`, `retries`,
    `replica_crashes`), by their name without the `podium_gateway_` prefix."""
    text = httpx.get(f"{server.url}/metrics", headers=server.headers, timeout=10).text
    counters: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("endpoint") == endpoint:
                name = sample.name.removeprefix("podium_gateway_").removesuffix("_total")
                if "code" not in sample.labels:
                    counters[name] = sample.value
    return counters


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


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
        headers=server.headers,
    )
    # Only the requests the victim was serving when it died fail, with a 502 that says so:
    # they may have reached the model, so they are never re-sent (a poison request would
    # crash every replica in turn). Everything else is retried elsewhere or served.
    crashed = "the replica crashed while serving this request"
    assert all(crashed in f for f in report.failures), report.failures[:5]
    assert len(report.failures) <= 8  # at most one per client
    assert report.ok > 200
    assert report.replicas[victim.replica_id] > 0  # it did serve before it was killed
    # Every failed connection to the victim was either its crash while serving a request
    # (the 502s above) or a connection that never reached it, re-sent to the other replica.
    counters = gateway_counters(server, "chaos")
    assert counters["replica_failures"] == counters["retries"] + len(report.failures), counters

    wait_until(
        lambda: len(ids := ready_ids(server, "chaos")) == 2 and victim.replica_id not in ids,
        what="a replacement replica",
    )
    with server.client() as c:
        kinds = [e.kind for e in c.events("chaos")]
    assert EventKind.REPLICA_CRASHED in kinds
    assert EventKind.REPLICA_RESTARTED in kinds


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose controller passes only when woken: a dead replica stays in the
    routing table until the gateway meets it (a pass would find it gone first)."""
    with running_server(tmp_path_factory.mktemp("quiet"), PODIUM_TICK_S="3600") as s:
        yield s


def test_replica_killed_between_requests_is_retried_on_the_other(
    quiet_server: ServerProcess, tmp_path: Path
) -> None:
    server = quiet_server
    with server.client() as c:
        c.push_model(write_python_bundle(tmp_path / "echo"), "retry-echo")
        c.deploy(
            {
                "name": "retry",
                "model": "retry-echo",
                "framework": "python",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
                "liveness": {"path": "/health/live", "period_s": 3600},
            }
        )
        wait_running(c, "retry")
        wait_until(lambda: len(ready_ids(server, "retry")) == 2, what="2 ready replicas")
        victim, survivor = c.endpoint("retry").replicas
    assert victim.pid is not None
    url = f"{server.url}/endpoints/retry/"
    with httpx.Client(timeout=30, headers=server.headers) as http:
        served = {http.post(url, json={"inputs": 0}).headers["x-podium-replica"] for _ in range(20)}
        assert served == {victim.replica_id, survivor.replica_id}  # both are in the table
        os.kill(victim.pid, signal.SIGKILL)
        wait_until(lambda: dead(victim.pid), what="the victim's death")  # type: ignore[arg-type]
        # Nothing wakes the controller until the gateway meets the dead replica: each request
        # picks it or the survivor. The one that picks it is re-sent to the survivor.
        for i in range(200):
            r = http.post(url, json={"inputs": i})
            assert r.status_code == 200, r.text
            assert r.headers["x-podium-replica"] == survivor.replica_id
            assert r.json()["echo"] == i
            if gateway_counters(server, "retry")["replica_failures"]:
                break
    counters = gateway_counters(server, "retry")
    assert counters["replica_failures"] == 1, counters
    assert counters["retries"] == 1, counters  # the same request, on the survivor, at once
    assert counters["replica_crashes"] == 0, counters
    wait_until(
        lambda: len(ids := ready_ids(server, "retry")) == 2 and victim.replica_id not in ids,
        what="a replacement replica",
    )


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
        headers=server.headers,
    )
    assert report.failures == [], report.failures[:5]
    assert set(report.bodies) == {"1", "2"}
    assert report.last_body == "2"

    with server.client() as c:
        ep = wait_running(c, "roll")
        assert ep.revision == 2
        assert {r.revision for r in ep.replicas} == {2}
        assert len(c.revisions("roll")) == 2
