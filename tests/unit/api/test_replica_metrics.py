"""`GET /api/v1/endpoints/{name}/replicas/{replica_id}/metrics`: the API server fetches the
replica's own `/metrics` (which the gateway refuses) over real loopback HTTP, with a
timeout, and passes the Prometheus text on; a replica that does not answer is a 503."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.core.phases import ReplicaState
from podium.store.records import ReplicaRecord
from tests.unit.api.conftest import push, spec

TEXT = b"# TYPE podium_replica_requests_total counter\npodium_replica_requests_total 7.0\n"
CTYPE = "text/plain; version=0.0.4; charset=utf-8"
URL = "/api/v1/endpoints/iris-ep/replicas/{}/metrics"


class _Metrics(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        status, body = (200, TEXT) if self.path == "/metrics" else (404, b"")
        self.send_response(status)
        self.send_header("content-type", CTYPE)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def replica_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201


def add(ctx: ApiContext, replica_id: str, port: int, endpoint: str = "iris-ep") -> None:
    with ctx.db.unit_of_work() as uow:
        uow.replicas.upsert(
            ReplicaRecord(
                replica_id=replica_id,
                endpoint=endpoint,
                revision=1,
                state=ReplicaState.READY,
                host="127.0.0.1",
                port=port,
                pid=None,
                started_at=datetime.now(UTC),
            )
        )


def test_the_replicas_metrics_text_is_passed_on(
    client: TestClient, endpoint: None, ctx: ApiContext, replica_port: int
) -> None:
    add(ctx, "iris-ep-r1-aaa", replica_port)
    _Metrics.seen.clear()
    r = client.get(URL.format("iris-ep-r1-aaa"))
    assert r.status_code == 200, r.text
    assert r.content == TEXT
    assert r.headers["content-type"] == CTYPE
    assert _Metrics.seen == ["/metrics"]


def test_unknown_replica_endpoint_or_a_replica_of_another_endpoint_is_a_404(
    client: TestClient, endpoint: None, ctx: ApiContext, replica_port: int
) -> None:
    add(ctx, "other-r1-aaa", replica_port, endpoint="other")
    _Metrics.seen.clear()
    for url in (URL.format("iris-ep-r1-zzz"), URL.format("other-r1-aaa")):
        r = client.get(url)
        assert (r.status_code, r.json()["field"]) == (404, "replica_id"), r.text
    r = client.get("/api/v1/endpoints/ghost/replicas/x/metrics")
    assert r.status_code == 404
    assert _Metrics.seen == []


def test_a_replica_that_cannot_be_reached_is_a_503(
    client: TestClient, endpoint: None, ctx: ApiContext
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    add(ctx, "iris-ep-r1-dead", dead)
    r = client.get(URL.format("iris-ep-r1-dead"))
    assert r.status_code == 503
    assert r.json()["detail"].startswith("no metrics from replica iris-ep-r1-dead: it could not")


def test_a_replica_that_does_not_answer_is_a_503_after_the_timeout(
    client: TestClient, endpoint: None, ctx: ApiContext
) -> None:
    ctx.replica_timeout_s = 0.2
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        add(ctx, "iris-ep-r1-mute", silent.getsockname()[1])
        r = client.get(URL.format("iris-ep-r1-mute"))
    assert r.status_code == 503
    assert r.json()["detail"] == (
        "no metrics from replica iris-ep-r1-mute: it did not answer within 0.2 s"
    )
