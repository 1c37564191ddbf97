"""The OpenAI router at the gateway's root, over real sockets (echoing stand-in replicas)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute
from podium.core.settings import GatewaySettings
from tests.unit.gateway.conftest import Replica, RunningGateway, Servers


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[RunningGateway, list[Replica]]]:
    servers = Servers("http1")
    replicas = servers.replicas(2)
    yield servers.gateway(GatewaySettings(max_body_bytes=2_000)), replicas
    servers.close()


@pytest.fixture
def gw(setup: tuple[RunningGateway, list[Replica]]) -> RunningGateway:
    running, (gpt, emb) = setup
    running.publish(
        EndpointRoute("gpt", EndpointStatus.RUNNING, (gpt.route,), created=1_700_000_000),
        EndpointRoute("emb", EndpointStatus.RUNNING, (emb.route,), created=1_700_000_001),
        EndpointRoute("sleepy", EndpointStatus.PAUSED, (), created=1_700_000_002),
        EndpointRoute(
            "iris", EndpointStatus.RUNNING, (gpt.route,), framework="sklearn", openai=False
        ),
    )
    return running


def not_found(model: str) -> dict[str, object]:
    return {
        "error": {
            "message": f"model {model!r} not found",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


@pytest.mark.parametrize(
    ("path", "model", "server"),
    [
        ("/v1/chat/completions", "gpt", "r0"),
        ("/v1/completions", "gpt", "r0"),
        ("/v1/embeddings", "emb", "r1"),
    ],
)
def test_the_model_field_picks_the_endpoint(
    gw: RunningGateway, path: str, model: str, server: str
) -> None:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hé"}]})
    with gw.client() as client:
        r = client.post(path + "?x=1", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["server"] == server
    assert doc["path"] == path  # the same path on the replica, no /endpoints prefix
    assert doc["query"] == "x=1"
    assert doc["body"].encode("latin-1") == body.encode()  # forwarded byte for byte
    assert r.headers["x-request-id"]


def test_unknown_model_is_404_in_openai_format(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.post("/v1/chat/completions", json={"model": "nope", "messages": []})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json() == not_found("nope")


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"messages": []}', "model", "provide a model"),
        (b'{"model": 3}', "model", "non-empty string"),
        (b'{"model": ""}', "model", "non-empty string"),
    ],
)
def test_a_bad_body_is_400_in_openai_format(
    gw: RunningGateway, body: bytes, param: str | None, says: str
) -> None:
    with gw.client() as client:
        r = client.post("/v1/completions", content=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert says in error["message"]


def test_a_body_over_the_limit_is_413_in_openai_format(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.post("/v1/embeddings", json={"model": "emb", "input": "x" * 3_000})
    assert r.status_code == 413
    assert "2000 bytes" in r.json()["error"]["message"]


def test_models_lists_the_endpoints_that_may_serve_openai(gw: RunningGateway) -> None:
    with gw.client() as client:
        listed = client.get("/v1/models")
        one = client.get("/v1/models/emb")
        missing = client.get("/v1/models/nope")
    assert listed.status_code == 200
    assert listed.json() == {
        "object": "list",
        "data": [
            {"id": "emb", "object": "model", "created": 1_700_000_001, "owned_by": "podium"},
            {"id": "gpt", "object": "model", "created": 1_700_000_000, "owned_by": "podium"},
            {"id": "sleepy", "object": "model", "created": 1_700_000_002, "owned_by": "podium"},
        ],
    }
    assert one.json() == {
        "id": "emb",
        "object": "model",
        "created": 1_700_000_001,
        "owned_by": "podium",
    }
    assert missing.status_code == 404
    assert missing.json() == not_found("nope")


def test_an_endpoint_that_does_not_serve_openai_is_not_a_model(gw: RunningGateway) -> None:
    """`iris` (sklearn) is in the table but not listed; naming it is OpenAI's 404, which
    says where to call it instead, and it is not forwarded."""
    with gw.client() as client:
        one = client.get("/v1/models/iris")
        chat = client.post("/v1/chat/completions", json={"model": "iris", "messages": []})
    for r in (one, chat):
        assert r.status_code == 404
        error = r.json()["error"]
        assert error["code"] == "model_not_found"
        assert "(sklearn) does not serve the OpenAI API" in error["message"]
        assert "/endpoints/iris/" in error["message"]


def test_the_gateways_own_answers_use_openai_errors_too(gw: RunningGateway) -> None:
    gw.publish(
        EndpointRoute("gpt", EndpointStatus.SCALED_TO_ZERO, ()),
        EndpointRoute("sleepy", EndpointStatus.PAUSED, ()),
    )
    with gw.client() as client:
        paused = client.post("/v1/embeddings", json={"model": "sleepy", "input": "x"})
        held = client.post(
            "/v1/completions",
            json={"model": "gpt", "prompt": "x"},
            headers={"x-podium-wait-timeout": "0"},
        )
        wrong = client.get("/v1/chat/completions")
        unknown = client.post("/v1/images/generations", json={"model": "gpt"})
    assert paused.status_code == 503
    assert paused.headers["content-type"] == "application/json"
    assert paused.json()["error"] == {
        "message": "endpoint 'sleepy' is paused; resume it with `podium resume sleepy`",
        "type": "server_error",
        "param": None,
        "code": "endpoint_paused",
    }
    assert held.status_code == 504
    assert held.json()["error"]["code"] == "no_replica_in_time"
    assert "waited 0 s" in held.json()["error"]["message"]
    assert held.headers["x-request-id"]
    assert "gpt" in gw.woken
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert unknown.status_code == 404
    assert "no route /v1/images/generations" in unknown.json()["error"]["message"]


def test_endpoints_paths_are_unchanged(gw: RunningGateway) -> None:
    with gw.client() as client:
        r = client.post("/endpoints/gpt/v1/chat/completions", json={"model": "anything"})
    assert r.status_code == 200
    assert r.json()["server"] == "r0"
