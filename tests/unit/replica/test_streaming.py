"""Streams of a real replica: written as produced, stopped when the client leaves, and
the Hugging Face (TGI) text generation route driven by `huggingface_hub.InferenceClient`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import ValidationError

from tests.support.server import wait_until
from tests.unit.replica.bundles import generations, write_llm_bundle
from tests.unit.replica.conftest import Replica, launch


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llm-state")


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory, state: Path) -> Iterator[Replica]:
    tmp = tmp_path_factory.mktemp("llm")
    bundle = write_llm_bundle(tmp / "bundle", state)
    replica = launch(
        tmp, runtime="python", model_path=bundle, endpoint="llm", extra=["--max-concurrency", "2"]
    )
    assert replica.proc.poll() is None, replica.log()
    yield replica
    assert replica.stop() == 0, replica.log()


@pytest.fixture(autouse=True)
def fresh_state(state: Path) -> None:
    for name in ("generations.log", "started", "release"):
        (state / name).unlink(missing_ok=True)


def in_flight(replica: Replica) -> int:
    return int(httpx.get(replica.url + "/podium/info").json()["load"]["in_flight"])


def metric(replica: Replica, name: str) -> float:
    for line in httpx.get(replica.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_first_token_arrives_while_generation_is_still_running(llm: Replica, state: Path) -> None:
    body = {"inputs": "[block] a b", "stream": True}
    with llm.client() as http, http.stream("POST", "/", json=body) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(line for line in lines if line)
        assert json.loads(first.removeprefix("data: "))["token"]["text"] == "echo:"
        # The generator parks after its first token (it marks that just after yielding it,
        # so the token can arrive first): generation has not ended.
        wait_until(lambda: (state / "started").exists(), 15, "the generator parked")
        assert generations(state) == []
        assert in_flight(llm) == 1
        (state / "release").touch()
        events = [json.loads(x.removeprefix("data: ")) for x in lines if x]
    assert [e["token"]["text"] for e in events] == [" a", " b", ""]
    assert events[-1]["generated_text"] == "echo: a b"
    assert generations(state) == ["[block] cancelled=False"]


def test_client_leaving_a_stream_cancels_generation_and_frees_the_slot(
    llm: Replica, state: Path
) -> None:
    body = {"model": "llm", "prompt": "[endless]", "stream": True}
    with llm.client() as http, http.stream("POST", "/v1/completions", json=body) as r:
        assert r.status_code == 200
        lines = r.iter_lines()  # keep it: dropping an unfinished iterator closes the connection
        assert next(lines).startswith("data: ")
        assert in_flight(llm) == 1
        assert generations(state) == []
        # leaving the block closes the connection mid-stream
    wait_until(lambda: generations(state) == ["[endless] cancelled=True"], 10, "the cancel")
    wait_until(lambda: in_flight(llm) == 0, 10, "the slot back")
    assert metric(llm, "podium_replica_in_flight") == 0


def test_client_leaving_a_whole_answer_cancels_generation(llm: Replica, state: Path) -> None:
    request = json.dumps({"inputs": "[block] x"}).encode()
    with socket.create_connection(("127.0.0.1", llm.port or 0)) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nhost: replica\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(request)}\r\n\r\n".encode()
            + request
        )
        wait_until((state / "started").exists, 10, "the generation to start")
    wait_until(lambda: generations(state) == ["[block] cancelled=True"], 10, "the cancel")
    wait_until(lambda: in_flight(llm) == 0, 10, "the slot back")


def test_text_generation_with_huggingface_hub(llm: Replica) -> None:
    client = InferenceClient(model=llm.url)
    assert client.text_generation("one two", max_new_tokens=20) == "echo: one two"
    full = client.text_generation(
        "one two three", max_new_tokens=2, details=True, return_full_text=True
    )
    assert full.generated_text == "one two threeecho: one"
    assert full.details is not None
    assert (full.details.finish_reason, full.details.generated_tokens) == ("length", 2)
    assert client.text_generation("a b c", stop=[" b"]) == "echo: a"
    tokens = list(client.text_generation("one two", stream=True))
    assert "".join(tokens) == "echo: one two"
    assert tokens[:3] == ["echo:", " one", " two"]
    detailed = list(client.text_generation("x y", stream=True, details=True, max_new_tokens=2))
    assert detailed[-1].generated_text == "echo: x"
    assert detailed[-1].details is not None
    assert detailed[-1].details.finish_reason == "length"


def test_chat_completion_with_huggingface_hub(llm: Replica) -> None:
    client = InferenceClient(model=llm.url)
    out = client.chat_completion([{"role": "user", "content": "hi there"}], max_tokens=3)
    assert out.choices[0].message.content == "echo: user: hi"
    assert out.choices[0].finish_reason == "length"
    chunks = list(client.chat_completion([{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "echo: user: hi assistant:"
    )


def test_unsupported_tgi_parameters_are_refused(llm: Replica) -> None:
    client = InferenceClient(model=llm.url)
    # TGI's error_type makes huggingface_hub raise its ValidationError with our message.
    with pytest.raises(ValidationError, match="top_k"):
        client.text_generation("x", top_k=5)
    with llm.client() as http:
        r = http.post("/", json={"inputs": "x", "parameters": {"max_new_tokens": -1}})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "parameters.max_new_tokens"
    assert r.json()["error_type"] == "validation"


def test_prompt_too_long_is_refused_before_streaming(llm: Replica) -> None:
    long_prompt = " ".join(["w"] * 100)
    with llm.client() as http:
        r = http.post("/", json={"inputs": long_prompt, "stream": True})
    assert r.status_code == 422
    assert "context length is 64 tokens" in r.json()["detail"]
