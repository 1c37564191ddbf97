"""Bring your own server (framework `command`) and presets, through a real `podium up`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.core.phases import EndpointStatus, EventKind
from tests.support.server import ServerProcess, wait_running, wait_until

BYO = str(Path(__file__).resolve().parents[1] / "support" / "byo_server.py")
_REPLICA_EVENTS = {
    EventKind.REPLICA_STARTING,
    EventKind.REPLICA_RESTARTED,
    EventKind.REPLICA_CRASHED,
    EventKind.REPLICA_READY,
}


@pytest.fixture(scope="module")
def byo_model(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("byo-model")
    (folder / "message.txt").write_text("weights: 42", encoding="utf-8")
    with server.client() as c:
        c.push_model(folder, "byo-model")
    return "byo-model"


def _byo_spec(name: str, model: str, *args: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "framework": "command",
        "command": {"command": sys.executable, "args": [BYO, *args], "health_route": "/health"},
        **extra,
    }


def test_command_endpoint_serves_every_path(server: ServerProcess, byo_model: str) -> None:
    with server.client() as c:
        c.deploy(_byo_spec("byo", byo_model, env={"BYO_ECHO": "from-env"}))
        wait_running(c, "byo", timeout=60)
    answer = httpx.post(
        f"{server.url}/endpoints/byo/any/path?x=1",
        content=b'{"hello": 1}',
        headers=server.headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "method": "POST",
        "path": "/any/path?x=1",
        "body": '{"hello": 1}',
        "model_file": "weights: 42",
        "env": "from-env",
    }
    got = httpx.get(
        f"{server.url}/endpoints/byo/v1/models", headers=server.headers, timeout=30
    ).json()
    assert got["path"] == "/v1/models"

    def logged() -> bool:
        with server.client() as c:
            lines = [entry.line for entry in c.logs("byo")]
        return any("listening on 127.0.0.1" in x for x in lines) and any(
            "/any/path" in x for x in lines
        )

    wait_until(logged, timeout=30, what="the server's own log lines")


def test_unhealthy_command_server_is_not_routed(server: ServerProcess, byo_model: str) -> None:
    with server.client() as c:
        c.deploy(_byo_spec("byo-sick", byo_model, "--fail-health"))

    def probed() -> bool:  # the controller probes the health route, which says 503
        with server.client() as c:
            return any('"GET /health HTTP/1.1" 503' in e.line for e in c.logs("byo-sick"))

    wait_until(probed, timeout=30, what="a readiness probe on /health")
    with server.client() as c:
        assert c.endpoint("byo-sick").status is EndpointStatus.INITIALIZING
    # Held for a replica that never becomes ready: 504 once the request's wait is over.
    r = httpx.get(
        f"{server.url}/endpoints/byo-sick/x",
        headers={**server.headers, "X-Podium-Wait-Timeout": "1"},
        timeout=30,
    )
    assert r.status_code == 504
    assert r.json()["endpoint_status"] == "initializing"
    assert "no replica became ready" in r.json()["detail"]


def test_missing_preset_fails_at_once(server: ServerProcess, byo_model: str) -> None:
    with server.client() as c:
        c.deploy({"name": "llm", "model": byo_model, "framework": "vllm"})

    def failed() -> bool:
        with server.client() as c:
            return c.endpoint("llm").status is EndpointStatus.FAILED

    wait_until(failed, timeout=30, what="llm to fail")
    with server.client() as c:
        reason = c.endpoint("llm").status_reason or ""
        events = c.events("llm")
    assert "vllm is not installed on this backend (no `vllm` program on PATH)" in reason
    assert not [e for e in events if e.kind in _REPLICA_EVENTS]  # nothing started, no restarts


def test_tcp_readiness_exec_liveness_and_env_flags(
    server: ServerProcess, byo_model: str, tmp_path: Path
) -> None:
    """Probes of other kinds keep a real replica routed (the exec liveness probe checks the
    replica's port and leaves a mark each time it runs), and a disabled env entry never
    reaches the replica while a plain one does."""
    marks = tmp_path / "liveness-runs"
    check = (
        "import os, socket, sys; "
        "socket.create_connection(('127.0.0.1', int(os.environ['PORT'])), 2).close(); "
        "open(sys.argv[1], 'a').write('x')"
    )
    spec = _byo_spec(
        "byo-kinds",
        byo_model,
        env={"BYO_PLAIN": "seen", "BYO_HIDDEN": {"value": "never", "disabled": True}},
        readiness={"kind": "tcp", "period_s": 0.5},
        liveness={
            "kind": "exec",
            "command": [sys.executable, "-c", check, str(marks)],
            "period_s": 1,  # an exec probe's least
        },
    )
    with server.client() as c:
        c.deploy(spec)
        wait_running(c, "byo-kinds", timeout=60)
    url = f"{server.url}/endpoints/byo-kinds"
    env = httpx.get(f"{url}/env", headers=server.headers, timeout=30)
    assert env.status_code == 200, env.text
    assert env.json() == {"BYO_PLAIN": "seen"}
    wait_until(
        lambda: marks.exists() and len(marks.read_text()) >= 3,
        timeout=30,
        what="three exec liveness probes",
    )
    answer = httpx.post(f"{url}/x", content=b"hi", headers=server.headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["body"] == "hi"
    with server.client() as c:
        ep = c.endpoint("byo-kinds")
        kinds = [e.kind for e in c.events("byo-kinds")]
    assert ep.ready_replicas == 1
    assert kinds.count(EventKind.REPLICA_READY) == 1
    assert EventKind.REPLICA_UNHEALTHY not in kinds and EventKind.REPLICA_RESTARTED not in kinds
