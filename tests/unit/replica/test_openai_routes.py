"""OpenAI routes of a real replica process, driven by the official `openai` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.unit.replica.bundles import write_embedder_bundle, write_llm_bundle
from tests.unit.replica.conftest import Replica, launch

HELLO = [{"role": "user", "content": "hello world"}]


def _start(tmp: Path, bundle: Path, endpoint: str) -> Replica:
    replica = launch(tmp, runtime="python", model_path=bundle, endpoint=endpoint)
    assert replica.proc.poll() is None, replica.log()
    return replica


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    tmp = tmp_path_factory.mktemp("llm")
    replica = _start(tmp, write_llm_bundle(tmp / "bundle", tmp / "state"), "llm")
    yield replica
    assert replica.stop() == 0, replica.log()


@pytest.fixture(scope="module")
def plain_lm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """Generates, but has no chat template."""
    tmp = tmp_path_factory.mktemp("plain")
    replica = _start(tmp, write_llm_bundle(tmp / "bundle", tmp / "state", chat=False), "plain")
    yield replica
    assert replica.stop() == 0, replica.log()


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    tmp = tmp_path_factory.mktemp("embedder")
    replica = _start(tmp, write_embedder_bundle(tmp / "bundle"), "embedder")
    yield replica
    assert replica.stop() == 0, replica.log()


def client(replica: Replica) -> openai.OpenAI:
    return openai.OpenAI(base_url=replica.url + "/v1", api_key="none", max_retries=0)


def test_chat_completion(llm: Replica) -> None:
    out = client(llm).chat.completions.create(model="llm", messages=HELLO)  # type: ignore[arg-type]
    assert out.object == "chat.completion"
    assert out.model == "llm"
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == "echo: user: hello world assistant:"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (4, 5)
    assert out.usage.total_tokens == 9


def test_chat_stream_with_usage(llm: Replica) -> None:
    stream = client(llm).chat.completions.create(
        model="llm",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: user: hello world assistant:"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 9


def test_sampling_limits(llm: Replica) -> None:
    c = client(llm)
    short = c.chat.completions.create(model="x", messages=HELLO, max_completion_tokens=2)  # type: ignore[arg-type]
    assert (short.choices[0].message.content, short.choices[0].finish_reason) == (
        "echo: user:",
        "length",
    )
    stopped = c.completions.create(model="x", prompt="a b c d", stop=[" c"], seed=1, temperature=0)
    assert (stopped.choices[0].text, stopped.choices[0].finish_reason) == ("echo: a b", "stop")


def test_completions_with_several_prompts_and_echo(llm: Replica) -> None:
    c = client(llm)
    out = c.completions.create(model="llm", prompt=["one two", "three"], max_tokens=8)
    assert out.object == "text_completion"
    assert [(ch.index, ch.text) for ch in out.choices] == [(0, "echo: one two"), (1, "echo: three")]
    assert out.usage is not None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (3, 5)
    echoed = c.completions.create(model="llm", prompt="hi", echo=True)
    assert echoed.choices[0].text == "hiecho: hi"


def test_completion_stream(llm: Replica) -> None:
    stream = client(llm).completions.create(
        model="llm", prompt=["a b", "c"], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    by_index: dict[int, str] = {}
    for ch in chunks:
        for choice in ch.choices:
            by_index[choice.index] = by_index.get(choice.index, "") + choice.text
    assert by_index == {0: "echo: a b", 1: "echo: c"}
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


def test_models_list(llm: Replica) -> None:
    assert [m.id for m in client(llm).models.list()] == ["llm"]
    assert client(llm).models.retrieve("llm").owned_by == "podium"
    with pytest.raises(openai.NotFoundError) as caught:
        client(llm).models.retrieve("gpt-4")
    assert caught.value.code == "model_not_found"


def test_errors_use_openai_shape_and_name_the_param(llm: Replica) -> None:
    c = client(llm)
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(model="llm", messages=HELLO, n=2)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "only n=1 is supported; got n=2",
        "type": "invalid_request_error",
        "param": "n",
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as caught:
        c.completions.create(model="llm", prompt="x", temperature=3)
    assert caught.value.param == "temperature"
    long_prompt = " ".join(["w"] * 80)
    with pytest.raises(openai.BadRequestError) as caught:
        c.completions.create(model="llm", prompt=long_prompt)
    assert caught.value.param == "prompt"
    assert caught.value.code == "context_length_exceeded"
    assert "context length is 64 tokens" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(
            model="llm",
            messages=[{"role": "user", "content": long_prompt}],
            stream=True,  # refused before the stream starts: a plain 400
        )
    assert caught.value.param == "messages"


def test_no_chat_template_is_a_400(plain_lm: Replica) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(plain_lm).chat.completions.create(model="plain", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.param == "messages"
    assert "no chat template" in caught.value.message
    assert client(plain_lm).completions.create(model="p", prompt="ok").choices[0].text == "echo: ok"


def test_raw_sse_framing_and_unknown_routes(llm: Replica) -> None:
    with llm.client() as http:
        body = {"prompt": "a", "stream": True}
        with http.stream("POST", "/v1/completions", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-cache"
            assert r.headers["x-podium-replica"] == llm.replica_id
            raw = r.read()
        events = raw.split(b"\n\n")
        assert events[-1] == b"" and events[-2] == b"data: [DONE]"
        for event in events[:-2]:
            assert event.startswith(b"data: ")
            assert json.loads(event[6:])["object"] == "text_completion"
        missing = http.post("/v1/rerank", json={})
        wrong = http.get("/v1/chat/completions")
        empty = http.post("/v1/chat/completions", content=b"")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert (
        "serves /v1/chat/completions, /v1/completions, /v1/models"
        in missing.json()["error"]["message"]
    )
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    assert empty.status_code == 400 and empty.json()["error"]["param"] is None


def test_failure_mid_stream_is_an_error_event(llm: Replica) -> None:
    stream = client(llm).chat.completions.create(
        model="llm",
        messages=[{"role": "user", "content": "[boom]"}],
        stream=True,
    )
    got: list[str] = []
    with pytest.raises(openai.APIError, match="the model broke mid-stream"):
        for chunk in stream:
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(got) == "echo:"


def test_embeddings(embedder: Replica) -> None:
    c = client(embedder)
    default = c.embeddings.create(model="e", input=["banana", "tree"])  # client asks for base64
    floats = c.embeddings.create(model="e", input=["banana", "tree"], encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    for a, b in zip(default.data, floats.data, strict=True):
        assert len(a.embedding) == 4
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6)
    assert default.usage.prompt_tokens == 2
    assert [m.id for m in c.models.list()] == ["embedder"]
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="e", messages=HELLO)  # type: ignore[arg-type]
