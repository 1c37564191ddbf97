"""Across a restart of `podium up` on the same PODIUM_HOME, gracefully (SIGTERM) and after
a crash (SIGKILL): a failed endpoint stays failed, a paused one stays paused, a
scaled-to-zero one stays at zero, and none of them gets a replica started; the one at zero
still wakes on a request and answers it.

The controller's tick is an hour and every endpoint probes its ready replicas once an hour,
so the wake from zero after a restart can only come from the gateway's activator. "No
replica started" is checked once the restarted controller has done real work (the `live`
endpoint, a positive control, is running again): by then its first passes, which would
start them, are done. Nothing asserts on a duration.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx

from podium.client import PodiumClient
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, free_port, wait_running, wait_until

SLOW_PROBES = {
    "readiness": {"path": "/health/ready", "period_s": 3600},
    "liveness": {"path": "/health/live", "period_s": 3600, "timeout_s": 2},
}
KEPT = ("broken", "napping", "zero-a", "zero-b")  # endpoints that must get no replica
WAIT = {"X-Podium-Wait-Timeout": "60"}


def spec(name: str, model: str, low: int) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "framework": "python",
        "scaling": {"min_replicas": low, "max_replicas": 1},
        **SLOW_PROBES,
    }


def test_failed_paused_and_zero_endpoints_keep_their_state_across_restarts(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "home", free_port(), {"PODIUM_TICK_S": "3600"})
    server.start()
    try:
        with server.client() as c:
            c.push_model(write_python_bundle(tmp_path / "quick"), "quick")
            c.push_model(write_python_bundle(tmp_path / "bad", fail_load="no weights"), "bad")
            for name, model, low in [
                ("live", "quick", 1),
                ("napping", "quick", 1),
                ("broken", "bad", 1),
                ("zero-a", "quick", 0),
                ("zero-b", "quick", 0),
            ]:
                c.deploy(spec(name, model, low))
            wait_running(c, "live")
            wait_running(c, "napping")
            c.wait_for("broken", {EndpointStatus.FAILED})
            c.pause("napping")
            wait_until(lambda: c.endpoint("napping").replicas == [], 60, "napping's replicas gone")
            failed_because = c.endpoint("broken").status_reason
            assert failed_because and "no weights" in failed_because
            marks = _marks(c)

        # 1. A graceful stop: the server stops its replicas; the next one starts only `live`.
        server.stop(signal.SIGTERM)
        server.start()
        with server.client() as c:
            wait_running(c, "live")
            _kept(server, c, marks, failed_because)
            _wakes(server, c, "zero-a", marks)
            live_pids = {r.pid for r in c.endpoint("live").replicas}
            marks = _marks(c)

        # 2. A crash: the replicas of `live` and `zero-a` outlive it and are adopted.
        server.stop(signal.SIGKILL)
        server.start()
        with server.client() as c:
            wait_running(c, "live")
            assert {r.pid for r in c.endpoint("live").replicas} == live_pids
            assert any(e.kind is EventKind.REPLICA_ADOPTED for e in _since(c, "live", marks))
            _kept(server, c, marks, failed_because, names=("broken", "napping", "zero-b"))
            _wakes(server, c, "zero-b", marks)
    finally:
        server.stop()


def _marks(c: PodiumClient) -> dict[str, int]:
    """The last event id of each endpoint: what happens after a restart comes after it."""
    return {e.name: max((ev.id for ev in c.events(e.name)), default=0) for e in c.endpoints()}


def _since(c: PodiumClient, name: str, marks: dict[str, int]) -> list[Any]:
    return c.events(name, after=marks[name])


def _kept(
    server: ServerProcess,
    c: PodiumClient,
    marks: dict[str, int],
    failed_because: str,
    names: tuple[str, ...] = KEPT,
) -> None:
    """Each endpoint in `names` kept its state, has no replica and got no event since the
    restart (a replica started for it would have written `replica_starting`)."""
    want = {
        "broken": EndpointStatus.FAILED,
        "napping": EndpointStatus.PAUSED,
        "zero-a": EndpointStatus.SCALED_TO_ZERO,
        "zero-b": EndpointStatus.SCALED_TO_ZERO,
    }
    for name in names:
        ep = c.endpoint(name)
        assert (ep.status, ep.replicas) == (want[name], []), (name, ep.status, ep.replicas)
        assert [(e.kind, e.message) for e in _since(c, name, marks)] == [], name
    assert c.endpoint("broken").status_reason == failed_because
    assert c.endpoint("napping").desired_replicas == 1  # kept for `resume`
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        r = http.post("/endpoints/napping/", json={"inputs": 1}, headers=WAIT)
    assert r.status_code == 503 and "paused" in r.text, r.text  # at once, not held


def _wakes(server: ServerProcess, c: PodiumClient, name: str, marks: dict[str, int]) -> None:
    """A request to the endpoint at zero is held, wakes it, and is answered.

    First the controller goes to sleep for the hour: `live`, just ready, is probed again
    0.05 s later, and a request held before that pass would be seen without a wake. No API
    shows that pass; the pause can only make the test stricter, never make it fail."""
    time.sleep(1.0)
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=90) as http:
        r = http.post(f"/endpoints/{name}/", json={"inputs": name}, headers=WAIT)
    assert r.status_code == 200, r.text
    assert r.json()["echo"] == name
    woke = [e.message for e in _since(c, name, marks) if e.kind is EventKind.SCALED]
    assert any(m.startswith("scaled 0→1") and "held" in m for m in woke), woke
    assert [r.state for r in c.endpoint(name).replicas] == [ReplicaState.READY]
