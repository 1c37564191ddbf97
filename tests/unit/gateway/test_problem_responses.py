"""The gateway's own answers are RFC 9457 problems: status, title, body, and honest headers.

Over real HTTP through a running gateway, and message by message through `send_problem`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from podium.core.phases import EndpointStatus
from podium.core.problems import REFUSED_BY_GATEWAY, SAFE_HEADERS
from podium.gateway.responses import problem_body, send_problem
from tests.unit.gateway.conftest import RunningGateway, Servers, endpoint


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    servers = Servers("http1")  # the gateway answers these itself: no upstream transport
    try:
        running = servers.gateway()
        running.publish(endpoint("sleepy", status=EndpointStatus.PAUSED))
        yield running
    finally:
        servers.close()


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["content-length"]) == len(r.content)
    body = dict(r.json())
    assert (body["type"], body["status"]) == ("about:blank", status)
    return body


def test_unknown_path_is_a_titled_404(gateway: RunningGateway) -> None:
    with gateway.client() as c:
        r = c.get("/nowhere")
    body = _problem(r, 404)
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no such path; endpoints are under /endpoints/{name}/ (project default) "
        "and /p/{project}/endpoints/{name}/",
    }
    assert "x-request-id" not in r.headers  # only requests for an endpoint get one


def test_unknown_endpoint_names_it(gateway: RunningGateway) -> None:
    with gateway.client() as c:
        body = _problem(c.get("/endpoints/ghost/predict"), 404)
    assert (body["title"], body["endpoint"]) == ("Not Found", "ghost")


def test_a_refusal_carries_its_title_extras_and_the_request_id(gateway: RunningGateway) -> None:
    with gateway.client() as c:
        r = c.post("/endpoints/sleepy/predict", json={}, headers={"x-request-id": "req-42"})
    body = _problem(r, 503)
    assert body["title"] == "Endpoint paused"
    assert (body["endpoint"], body["endpoint_status"]) == ("sleepy", "paused")
    assert r.headers["x-request-id"] == "req-42"


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (400, "Bad Request"),
        (404, "Not Found"),
        (413, "Content Too Large"),
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (599, "Error"),  # a status with no title at all
    ],
)
def test_untitled_problems_are_titled_by_their_status(status: int, title: str) -> None:
    body = json.loads(problem_body(status, "why"))
    assert body == {"type": "about:blank", "title": title, "status": status, "detail": "why"}


def test_a_title_and_extras_are_added_to_the_body() -> None:
    body = json.loads(problem_body(502, "down", "Replica crashed", replica="r1", cause="oom"))
    assert body == {
        "type": "about:blank",
        "title": "Replica crashed",
        "status": 502,
        "detail": "down",
        "replica": "r1",
        "cause": "oom",
    }


async def test_send_problem_sends_one_whole_response() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await send_problem(
        send,
        503,
        "waking",
        title="Endpoint waking",
        request_id="r-1",
        headers=((b"retry-after", b"2"),),
        endpoint="iris",
    )
    head, body = sent
    assert head["type"] == "http.response.start"
    assert head["status"] == 503
    payload = body["body"]
    assert head["headers"] == [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
        (b"retry-after", b"2"),
        *SAFE_HEADERS,
        REFUSED_BY_GATEWAY,  # a 503 the gateway made: refused before any work
        (b"x-request-id", b"r-1"),
    ]
    assert (body["type"], body["more_body"]) == ("http.response.body", False)
    assert json.loads(payload) == {
        "type": "about:blank",
        "title": "Endpoint waking",
        "status": 503,
        "detail": "waking",
        "endpoint": "iris",
    }


async def test_a_request_id_is_sent_as_latin1_bytes() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await send_problem(send, 504, "slow", request_id="caf\u00e9")
    assert (b"x-request-id", b"caf\xe9") in sent[0]["headers"]
