"""Streams and batching through a real `podium up`: gateway, controller, local backend.

Python-runtime bundles (tests/unit/replica/bundles.py) make the model's behaviour
observable: a generator that parks after its first token until the test releases it, one
that runs until cancelled, and a classifier that logs the size of every batch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.server import ServerProcess, running_server, wait_running, wait_until
from tests.unit.replica.bundles import (
    batch_sizes,
    generations,
    write_batch_bundle,
    write_llm_bundle,
)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, state: Path) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    with running_server(tmp_path_factory.mktemp("podium")) as s, s.client() as c:
        c.push_model(write_llm_bundle(tmp / "llm", state / "llm"), "llm")
        c.deploy({"name": "llm", "model": "llm", "framework": "python"})
        c.push_model(write_batch_bundle(tmp / "cls", state / "cls"), "cls")
        c.deploy(
            {
                "name": "cls",
                "model": "cls",
                "framework": "python",
                "max_concurrency": 8,
                "batching": {"max_batch_size": 8, "max_wait_ms": 10000},
            }
        )
        wait_running(c, "llm")
        wait_running(c, "cls")
        yield s


@pytest.fixture(autouse=True)
def fresh_state(state: Path) -> None:
    for name in ("generations.log", "started", "release"):
        (state / "llm" / name).unlink(missing_ok=True)


def replica_info(server: ServerProcess, name: str) -> dict[str, Any]:
    """The endpoint's (one) replica's /podium/info, asked directly: the gateway refuses a
    replica's internal routes."""
    with server.client() as c:
        (replica,) = c.endpoint(name).replicas
    info: dict[str, Any] = httpx.get(f"http://{replica.host}:{replica.port}/podium/info").json()
    return info


def in_flight(server: ServerProcess, name: str) -> int:
    return int(replica_info(server, name)["load"]["in_flight"])


def test_first_token_reaches_the_client_before_generation_ends(
    server: ServerProcess, state: Path
) -> None:
    llm = state / "llm"
    url = f"{server.url}/endpoints/llm/v1"
    client = openai.OpenAI(base_url=url, api_key=server.token, max_retries=0)
    stream = client.chat.completions.create(
        model="llm", messages=[{"role": "user", "content": "[block] one two"}], stream=True
    )
    chunks = iter(stream)
    role = next(chunks)
    assert role.choices[0].delta.role == "assistant"
    first = next(chunks)
    assert first.choices[0].delta.content == "echo:"
    # The model is parked after its first token, so this token went through the gateway
    # while the generation was still running. It marks the park just after yielding the
    # token, which the client may receive first: wait for the mark, don't race it.
    wait_until(lambda: (llm / "started").exists(), 30, "the model parked after its first token")
    assert generations(llm) == []
    (llm / "release").touch()
    rest = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert rest == " user: one two assistant:"
    assert generations(llm) == ["[block] cancelled=False"]


def test_tgi_stream_through_the_gateway(server: ServerProcess, state: Path) -> None:
    body = {"inputs": "[block] x", "stream": True}
    with (
        httpx.Client(timeout=30, headers=server.headers) as http,
        http.stream("POST", f"{server.url}/endpoints/llm/", json=body) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"]
        lines = r.iter_lines()
        first = json.loads(next(lines).removeprefix("data: "))
        assert first["token"]["text"] == "echo:"
        assert generations(state / "llm") == []
        (state / "llm" / "release").touch()
        last = [json.loads(x.removeprefix("data: ")) for x in lines if x][-1]
    assert last["generated_text"] == "echo: x"


def test_leaving_mid_stream_cancels_generation_behind_the_gateway(
    server: ServerProcess, state: Path
) -> None:
    body = {"prompt": "[endless]", "stream": True}
    with (
        httpx.Client(timeout=30, headers=server.headers) as http,
        http.stream("POST", f"{server.url}/endpoints/llm/v1/completions", json=body) as r,
    ):
        lines = r.iter_lines()  # kept alive until the block ends
        assert next(lines).startswith("data: ")
        assert in_flight(server, "llm") == 1
    wait_until(lambda: generations(state / "llm") == ["[endless] cancelled=True"], 15, "the cancel")
    wait_until(lambda: in_flight(server, "llm") == 0, 15, "the replica's slot back")


def test_openai_errors_pass_through_the_gateway(server: ServerProcess) -> None:
    client = openai.OpenAI(
        base_url=f"{server.url}/endpoints/llm/v1", api_key=server.token, max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="llm", prompt=" ".join(["w"] * 100))
    assert caught.value.param == "prompt"
    assert "context length is 64 tokens" in caught.value.message


def test_endpoint_batching_spec_reaches_the_replica(server: ServerProcess, state: Path) -> None:
    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60, headers=server.headers) as http:
            url = f"{server.url}/endpoints/cls/"
            return await asyncio.gather(
                *(http.post(url, json={"inputs": f"good {i}"}) for i in range(8))
            )

    answers = asyncio.run(post_all())
    assert [r.status_code for r in answers] == [200] * 8
    assert [r.json()[0]["label"] for r in answers] == ["NEGATIVE"] * 8
    assert batch_sizes(state / "cls") == [8]  # max_wait_ms 10 s: the batch went when full
    info = replica_info(server, "cls")
    assert info["batching"] == {"max_batch_size": 8, "max_wait_ms": 10000.0}
