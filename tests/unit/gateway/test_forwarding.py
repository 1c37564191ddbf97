"""Requests and the gateway's own answers, over real sockets."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from podium.core.phases import EndpointStatus
from podium.core.settings import GatewaySettings
from tests.unit.gateway.conftest import Replica, RunningGateway, Servers, endpoint
from tests.unit.gateway.servers import wait_until


@pytest.fixture(scope="module")
def setup(module_servers: Servers) -> tuple[RunningGateway, Replica]:
    (replica,) = module_servers.replicas(1)
    running = module_servers.gateway(GatewaySettings(max_body_bytes=10_000, retry_body_bytes=1_000))
    return running, replica


@pytest.fixture
def gw(setup: tuple[RunningGateway, Replica]) -> RunningGateway:
    running, replica = setup
    running.publish(endpoint("echo", replica.route))
    running.woken.clear()
    return running


def headers_of(doc: dict[str, object]) -> dict[str, str]:
    return {k: v for k, v in doc["headers"]}  # type: ignore[attr-defined,misc]


def test_forwards_method_path_query_body_and_headers(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.post(
            "/endpoints/echo/v1/predict/a%2Fb?x=1&y=%20z",
            content=b'{"inputs": [1, 2]}',
            headers={
                "content-type": "application/json",
                "x-custom": "yes",
                "proxy-authorization": "secret",
                "connection": "keep-alive, x-hop",
                "x-hop": "dropped",
                "x-forwarded-for": "10.0.0.1",
            },
        )
    assert r.status_code == 200
    doc = r.json()
    assert doc["method"] == "POST"
    assert doc["raw_path"] == "/v1/predict/a%2Fb"  # escapes kept as the client sent them
    assert doc["query"] == "x=1&y=%20z"
    assert doc["body"] == '{"inputs": [1, 2]}'
    headers = headers_of(doc)
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == "18"
    assert headers["x-custom"] == "yes"
    assert "proxy-authorization" not in headers
    assert "x-hop" not in headers
    assert headers["host"] != f"127.0.0.1:{gw.server.port}"  # the replica's own host
    assert headers["x-forwarded-host"] == f"127.0.0.1:{gw.server.port}"
    assert headers["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    # The session adds nothing the client did not send.
    assert "user-agent" in headers  # httpx's own
    assert r.headers["x-upstream"] == "r0"
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [("/endpoints/echo", "/"), ("/endpoints/echo/", "/"), ("/endpoints/echo/a/b/", "/a/b/")],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_methods_and_paths(gw: RunningGateway, method: str, path: str, forwarded: str) -> None:
    with gw.client() as client:
        r = client.request(method, path)
    assert r.status_code == 200
    assert r.json()["method"] == method
    assert r.json()["path"] == forwarded
    assert r.json()["body"] == ""


def test_request_id_generated_and_returned(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.get("/endpoints/echo/")
    request_id = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{24}", request_id)  # ms since the epoch, 48 random bits
    assert headers_of(r.json())["x-request-id"] == request_id


def test_request_id_propagated(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.get("/endpoints/echo/", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert headers_of(r.json())["x-request-id"] == "abc-123"
    assert r.headers.get_list("x-request-id") == ["abc-123"]


def test_unknown_endpoint_is_404_problem(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.post("/endpoints/nope/predict", json={"inputs": 1})
        other = client.get("/elsewhere")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "endpoint 'nope' not found",
        "endpoint": "nope",
    }
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"


def test_paused_endpoint_is_503_with_how_to_resume(gw: RunningGateway) -> None:
    gw.publish(endpoint("echo", status=EndpointStatus.PAUSED))
    with gw.client() as client:
        r = client.post("/endpoints/echo/", json={"inputs": 1})
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Endpoint paused",
        "status": 503,
        "detail": "endpoint 'echo' is paused; resume it with `podium resume echo`",
        "endpoint": "echo",
        "endpoint_status": "paused",
    }
    assert gw.woken == []


@pytest.mark.parametrize("status", [EndpointStatus.SCALED_TO_ZERO, EndpointStatus.INITIALIZING])
def test_no_ready_replica_is_held_and_wakes(gw: RunningGateway, status: EndpointStatus) -> None:
    """Held until a replica is ready (tests/unit/gateway/test_activator.py); with a wait
    timeout of 0 the answer comes at once."""
    gw.publish(endpoint("echo", status=status))
    with gw.client() as client:
        r = client.post(
            "/endpoints/echo/", json={"inputs": 1}, headers={"x-podium-wait-timeout": "0"}
        )
    assert r.status_code == 504
    problem = r.json()
    assert problem["endpoint_status"] == status.value
    assert status.value in problem["detail"]
    assert gw.woken == ["echo"]


def test_failed_endpoint_without_replicas_is_503_and_not_woken(gw: RunningGateway) -> None:
    gw.publish(endpoint("echo", status=EndpointStatus.FAILED))
    with gw.client() as client:
        r = client.post("/endpoints/echo/", json={"inputs": 1})
    assert r.status_code == 503
    assert r.json()["endpoint_status"] == "failed"
    assert gw.woken == []


def test_413_by_content_length(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.post("/endpoints/echo/", content=b"x" * 10_001, headers={"x-request-id": "q"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == "q"
    problem = r.json()
    assert problem["detail"] == "request body is larger than the limit of 10000 bytes"
    assert (problem["title"], problem["limit"], problem["endpoint"]) == (
        "Too Large",
        10_000,
        "echo",
    )


def chunks(total: int, size: int = 500) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_413_by_streamed_count(gw: RunningGateway) -> None:
    with gw.client() as client:
        # A generator body goes out chunked: no content-length, so the gateway counts.
        r = client.post("/endpoints/echo/", content=chunks(12_000))
    assert r.status_code == 413
    assert "10000" in r.json()["detail"]
    gw.settle()
    assert gw.gateway.outstanding("r0") == 0


def test_413_found_while_the_body_streams_to_the_replica(gw: RunningGateway) -> None:
    def body() -> Iterator[bytes]:
        yield b"x" * 1_500  # over retry_body_bytes: the gateway starts the upload
        assert wait_until(lambda: gw.gateway.outstanding("r0") == 1)
        yield from chunks(10_000)

    with gw.client() as client:
        r = client.post("/endpoints/echo/", content=body(), headers={"x-request-id": "big"})
    assert r.status_code == 413
    assert r.headers["x-request-id"] == "big"
    problem = r.json()
    assert problem["detail"] == "request body is larger than the limit of 10000 bytes"
    assert (problem["title"], problem["limit"], problem["endpoint"]) == (
        "Too Large",  # TooLarge's title, as on the API
        10_000,
        "echo",
    )
    gw.settle()
    assert gw.gateway.outstanding("r0") == 0


@pytest.mark.parametrize("total", [900, 5_000, 10_000])
def test_chunked_bodies_up_to_the_limit_pass(gw: RunningGateway, total: int) -> None:
    """Below retry_body_bytes the body is buffered; above it, it streams through."""
    with gw.client() as client:
        r = client.post("/endpoints/echo/", content=chunks(total))
        sized = client.post("/endpoints/echo/", content=b"y" * total)
    assert r.status_code == 200
    assert r.json()["body"] == "x" * total
    assert sized.json()["body"] == "y" * total
    assert headers_of(sized.json())["content-length"] == str(total)


@pytest.mark.parametrize("sent", ["has space", "tab\there", "x" * 129, "é-accent"])
def test_a_request_id_that_is_not_printable_ascii_is_replaced(
    gw: RunningGateway, sent: str
) -> None:
    """It goes into records, CSV downloads and log lines: only 1-128 printable ASCII
    characters are kept; anything else gets a fresh id (as the replica reads it too)."""
    with gw.client() as client:
        r = client.get("/endpoints/echo/", headers={"x-request-id": sent.encode("latin-1")})
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    assert request_id != sent and re.fullmatch(r"[0-9a-f]{24}", request_id)
    assert headers_of(r.json())["x-request-id"] == request_id
