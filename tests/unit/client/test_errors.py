"""HTTP failures -> the core error tree, with httpx.MockTransport (no server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from podium.client import (
    DEFAULT_URL,
    Conflict,
    Invalid,
    NotFound,
    OutOfMemory,
    PodiumClient,
    PodiumError,
    Retryable,
    TooLarge,
    Unavailable,
)
from tests.support.server import free_port

Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, detail: str, field: str | None = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": "x", "status": status, "detail": detail}
    if field:
        body["field"] = field
    body.update(extra)
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def client_for(handler: Handler) -> PodiumClient:
    return PodiumClient("http://podium.test", transport=httpx.MockTransport(handler), max_retries=0)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, Invalid),
        (404, NotFound),
        (409, Conflict),
        (413, TooLarge),
        (422, Invalid),
        (503, Unavailable),
        (507, OutOfMemory),
        (500, PodiumError),
        (418, PodiumError),
    ],
)
def test_problem_status_maps_to_error_class(status: int, cls: type[PodiumError]) -> None:
    client = client_for(lambda request: problem(status, "what went wrong", "scaling"))
    with pytest.raises(PodiumError) as info:
        client.endpoint("iris")
    assert type(info.value) is cls
    assert info.value.message == "what went wrong"
    assert info.value.field == "scaling"


def test_503_with_retry_after_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, json={"status": 503, "detail": "cold start"}, headers={"retry-after": "3"}
        )

    with pytest.raises(Retryable) as info:
        client_for(handler).invoke("iris", {"inputs": 1})
    assert info.value.retry_after == 3.0
    assert info.value.message == "cold start"


def test_fastapi_validation_list_names_the_field() -> None:
    body = {
        "detail": [
            {"loc": ["body", "scaling", "max_replicas"], "msg": "Input should be >= 1"},
            {"loc": ["body", "name"], "msg": "Field required"},
        ]
    }
    client = client_for(lambda request: httpx.Response(422, json=body))
    with pytest.raises(Invalid) as info:
        client.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
    assert info.value.field == "scaling.max_replicas"
    assert info.value.message.startswith("Input should be >= 1")


def test_non_json_error_keeps_status_and_text() -> None:
    client = client_for(lambda request: httpx.Response(502, text="bad gateway upstream"))
    with pytest.raises(Unavailable) as info:
        client.models()
    assert "502" in info.value.message and "bad gateway upstream" in info.value.message


def test_unexpected_answer_shape_is_a_podium_error() -> None:
    client = client_for(lambda request: httpx.Response(200, json={"nope": 1}))
    with pytest.raises(PodiumError, match="unexpected answer"):
        client.endpoint("iris")


def test_transport_errors_become_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(Unavailable, match=r"cannot reach Podium at http://podium\.test"):
        client_for(refuse).health()

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(Unavailable, match="did not answer in time"):
        client_for(slow).health()


def test_connection_refused_on_a_real_port() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with PodiumClient(url, timeout=5) as client, pytest.raises(Unavailable) as info:
        client.health()
    message = str(info.value)
    assert message.startswith(f"cannot reach Podium at {url}: ")
    assert message.endswith("is `podium up` running?")


def test_base_url_comes_from_env_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_URL", raising=False)
    assert PodiumClient().base_url == DEFAULT_URL
    monkeypatch.setenv("PODIUM_URL", "http://elsewhere:9000/")
    assert PodiumClient().base_url == "http://elsewhere:9000"
    assert PodiumClient("http://given:1").base_url == "http://given:1"


def test_requests_use_the_api_prefix_and_quote_names() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return problem(404, "no")

    with pytest.raises(NotFound):
        client_for(handler).endpoint("a/b")
    assert seen == ["/api/v1/endpoints/a%2Fb"]
