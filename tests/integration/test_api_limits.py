"""A real `podium up`: oversized bodies and bad model references are refused without
costing the server, and the connection they came on keeps working."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

from podium.core.settings import ApiLimits
from tests.support.server import ServerProcess

MIB = 1024 * 1024


def _chunked_spec(total: int) -> Iterator[bytes]:
    yield b'{"name": "big-ep", "model": "iris", "framework": "sklearn", "labels": {"a": "'
    for _ in range(total // MIB):
        yield b"x" * MIB
    yield b'"}}'


def _conn(server: ServerProcess) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)


def test_chunked_body_over_the_json_limit_is_a_413(server: ServerProcess) -> None:
    conn = _conn(server)
    try:
        conn.request(
            "POST",
            "/api/v1/endpoints",
            body=_chunked_spec(8 * ApiLimits().max_json_bytes),
            headers={"content-type": "application/json", **server.headers},
            encode_chunked=True,
        )
        r = conn.getresponse()
        problem = json.loads(r.read())
    except (BrokenPipeError, ConnectionResetError):  # the server may stop reading first
        r = conn.getresponse()
        problem = json.loads(r.read())
    finally:
        conn.close()
    assert r.status == 413
    assert r.getheader("content-type") == "application/problem+json"
    assert "PODIUM_API_MAX_JSON_BYTES" in problem["detail"]
    with server.client() as client:
        assert client.endpoints() == []


def test_huge_model_version_is_a_422_and_the_connection_survives(server: ServerProcess) -> None:
    conn = _conn(server)
    try:
        for method, path in (("POST", "/api/v1/endpoints"), ("PATCH", "/api/v1/endpoints/ep")):
            body = {"name": "ep-huge", "model": "iris:99999999999999999999", "framework": "sklearn"}
            if method == "PATCH":
                body = {"model": "iris:99999999999999999999"}
            headers = {"content-type": "application/json", **server.headers}
            conn.request(method, path, json.dumps(body), headers)
            r = conn.getresponse()
            problem = json.loads(r.read())
            assert r.status == 422, problem
            assert problem["field"] == "model"
        conn.request("GET", "/api/v1/health")  # the same connection
        health = conn.getresponse()
        health.read()
        assert health.status == 200
    finally:
        conn.close()
