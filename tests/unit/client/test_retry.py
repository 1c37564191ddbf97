"""Retries on 429 and 503 + Retry-After, against a real local HTTP server (uvicorn in a
thread) that refuses as many times as told, then answers. Through the gateway (invoke,
predict) only Podium's own refusal is retried: one carrying `x-podium-refused` (the
gateway's, or a Podium replica's full queue), never an endpoint's own server's answer nor an
error a model's code raised."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from podium.client import (
    AsyncClient,
    PodiumClient,
    RateLimited,
    Retryable,
    RetryPolicy,
    Unavailable,
)
from podium.client._retry import podiums_own
from podium.core.phases import EndpointStatus
from podium.core.problems import REFUSED_HEADER, SAFE_HEADERS
from podium.core.routing import EndpointRoute
from tests.support.inproc import served
from tests.unit.gateway.conftest import Servers, endpoint

JSON = {"content-type": "application/json"}


@dataclass
class Refusing:
    """Answers `refusals` (status, headers) in turn, then 200 {"ok": true}; records each
    request as "METHOD /path"."""

    refusals: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        self.seen.append(f"{scope['method']} {scope['path']}")
        status, headers = self.refusals.pop(0) if self.refusals else (200, {})
        body = {"ok": True} if status == 200 else {"status": status, "detail": "busy"}
        raw = [(k.encode(), v.encode()) for k, v in {**JSON, **headers}.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[Refusing, str]]:
    refusing = Refusing()
    with served(refusing) as (host, port):
        yield refusing, f"http://{host}:{port}"


@pytest.fixture
def server(app: tuple[Refusing, str]) -> tuple[Refusing, str]:
    refusing, url = app
    refusing.refusals.clear()
    refusing.seen.clear()
    return refusing, url


SOON = {"retry-after": "0.01"}
# How Podium's own refusals look through the gateway: the gateway's, and a Podium replica's.
PROBLEM = {"content-type": "application/problem+json"}
HARDENED = {k.decode(): v.decode() for k, v in SAFE_HEADERS}  # the gateway's security headers
# ...which a proxy in front of the gateway may rewrite: the refusal still counts.
PROXIED = {**HARDENED, "x-frame-options": "DENY, DENY", "referrer-policy": "origin"}
GATEWAY = {**SOON, **PROBLEM, **PROXIED, REFUSED_HEADER: "gateway"}
REPLICA = {**SOON, **PROBLEM, "x-podium-replica": "default.iris-r1", REFUSED_HEADER: "replica"}


def test_a_503_with_retry_after_is_sent_again_then_answers(server: tuple[Refusing, str]) -> None:
    refusing, url = server
    refusing.refusals += [(503, GATEWAY), (429, REPLICA)]
    with PodiumClient(url, token="t") as client:
        assert client.invoke("iris", {"inputs": 1}) == {"ok": True}  # a POST: refused = not done
    assert refusing.seen == ["POST /endpoints/iris/"] * 3


@pytest.mark.parametrize(
    "headers",
    [
        SOON,  # vLLM/TGI-like JSON
        {**SOON, **PROBLEM},  # a problem, but not Podium's
        {**SOON, **PROBLEM, **HARDENED},  # a server hardened as the gateway is
        {**SOON, **PROBLEM, "x-podium-replica": "default.iris-r1"},  # a model's own error
        {**SOON, REFUSED_HEADER: "someone"},  # not a refuser Podium names
    ],
)
@pytest.mark.parametrize("status", [503, 429])
def test_an_endpoints_own_refusal_of_a_post_is_not_sent_again(
    server: tuple[Refusing, str], status: int, headers: dict[str, str]
) -> None:
    """The gateway passes on a `command` server's 503/429 as it came: that server may have
    started the work, so the POST is not re-sent."""
    refusing, url = server
    refusing.refusals += [(status, headers)]
    with PodiumClient(url, token="t") as client, pytest.raises((RateLimited, Retryable)):
        client.invoke("iris", {"inputs": 1})
    assert refusing.seen == ["POST /endpoints/iris/"]
    refusing.refusals += [(status, headers)]
    with PodiumClient(url, token="t") as client, pytest.raises((RateLimited, Retryable)):
        client.predict_async("iris", {"inputs": 1})
    assert refusing.seen[1:] == ["POST /endpoints/iris/async/"]


def test_the_control_plane_retries_a_post_as_before(server: tuple[Refusing, str]) -> None:
    refusing, url = server
    refusing.refusals += [(503, SOON)] * 3
    with PodiumClient(url, token="t", max_retries=2) as client, pytest.raises(Retryable):
        client.pause("iris")
    assert refusing.seen == ["POST /api/v1/endpoints/iris/pause"] * 3


def test_retries_stop_after_max_retries_with_the_last_refusal(
    server: tuple[Refusing, str],
) -> None:
    refusing, url = server
    refusing.refusals += [(503, SOON)] * 3
    with PodiumClient(url, token="t", max_retries=2) as client, pytest.raises(Retryable):
        client.endpoint("iris")
    assert len(refusing.seen) == 3


def test_what_the_server_may_have_done_is_not_retried(server: tuple[Refusing, str]) -> None:
    refusing, url = server
    refusing.refusals += [(503, {}), (200, {})]  # no Retry-After: not a refusal
    with PodiumClient(url, token="t") as client, pytest.raises(Unavailable) as caught:
        client.endpoint("iris")
    assert type(caught.value) is Unavailable and len(refusing.seen) == 1


def test_a_wait_longer_than_the_budget_is_not_made(server: tuple[Refusing, str]) -> None:
    refusing, url = server
    refusing.refusals += [(429, {"retry-after": "120"})]
    with PodiumClient(url, token="t", max_retry_wait=5) as client, pytest.raises(RateLimited):
        client.endpoint("iris")  # raised at once: waiting 120 s (or 10, capped) would pass 5 s
    assert len(refusing.seen) == 1


def test_the_policy_caps_each_wait() -> None:
    request = httpx.Request("GET", "http://x/")
    slow = httpx.Response(503, headers={"retry-after": "60"}, request=request)
    policy = RetryPolicy(max_retries=3, max_wait_s=2, max_total_s=5)
    assert policy.delay(slow, retries=0, waited=0) == 2
    assert policy.delay(slow, retries=0, waited=4) is None  # 4 + 2 > 5
    assert policy.delay(slow, retries=3, waited=0) is None
    assert policy.delay(httpx.Response(500, request=request), retries=0, waited=0) is None
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


async def test_the_async_client_retries_alike(server: tuple[Refusing, str]) -> None:
    refusing, url = server
    refusing.refusals += [(503, GATEWAY), (503, REPLICA)]
    async with AsyncClient(url, token="t") as client:
        assert await client.invoke("iris", {"inputs": 1}) == {"ok": True}
    assert len(refusing.seen) == 3
    refusing.refusals += [(503, SOON)]  # an endpoint's own: not sent again
    async with AsyncClient(url, token="t") as client:
        with pytest.raises(Retryable):
            await client.invoke("iris", {"inputs": 1})
    assert len(refusing.seen) == 4


def test_through_the_real_gateway_only_its_own_refusal_counts() -> None:
    """A replica's 503 + Retry-After is passed on as it came: the SDK sends the POST once.
    The gateway's own 503 (no room to hold the request) is one to retry."""
    servers = Servers("http1")
    try:
        (upstream,) = servers.replicas(1)
        gateway = servers.gateway()
        full = EndpointRoute("full", EndpointStatus.RUNNING, (), max_queued_requests=0)
        gateway.publish(endpoint("busy", upstream.route), full)
        with PodiumClient(gateway.url, token="t") as client, pytest.raises(Retryable):
            client.invoke("busy", {"inputs": 1}, path="/busy")
        assert upstream.app.requests == 1
        with gateway.client() as http:
            refused = http.post("/endpoints/full/", json={"inputs": 1})
            forwarded = http.post("/endpoints/busy/busy", json={"inputs": 1})
        assert forwarded.status_code == 503 and REFUSED_HEADER not in forwarded.headers
        assert refused.status_code == 503 and refused.headers[REFUSED_HEADER] == "gateway"
        assert podiums_own(refused)
        assert RetryPolicy().delay(refused, 0, 0.0, relayed=True) == 1.0
    finally:
        servers.close()
