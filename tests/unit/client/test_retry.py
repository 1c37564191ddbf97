"""Retries on 429 and 503 + Retry-After, against a real local HTTP server (uvicorn in a
thread) that refuses as many times as told, then answers."""

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
from tests.support.inproc import served


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
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *raw],
            }
        )
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


def test_a_503_with_retry_after_is_sent_again_then_answers(server: tuple[Refusing, str]) -> None:
    refusing, url = server
    refusing.refusals += [(503, SOON), (429, SOON)]
    with PodiumClient(url, token="t") as client:
        assert client.invoke("iris", {"inputs": 1}) == {"ok": True}  # a POST: refused = not done
    assert refusing.seen == ["POST /endpoints/iris/"] * 3


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
    refusing.refusals += [(503, SOON), (503, SOON)]
    async with AsyncClient(url, token="t") as client:
        assert await client.invoke("iris", {"inputs": 1}) == {"ok": True}
    assert len(refusing.seen) == 3
