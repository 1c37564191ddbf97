"""OpenAI request validation (errors name the param) and response documents / SSE framing."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from podium.core.errors import Invalid
from podium.protocols import openai


def body(**doc: Any) -> bytes:
    return json.dumps(doc).encode()


CHAT = [{"role": "user", "content": "hi"}]


def test_chat_request_defaults_and_parts() -> None:
    req = openai.decode_chat_request(
        body(
            model="anything",
            messages=[
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
                {"role": "assistant", "content": None},
            ],
        )
    )
    assert req.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": ""},
    ]
    assert req.sampling == openai.Sampling()
    assert (req.model, req.stream, req.include_usage) == ("anything", False, False)


def test_chat_sampling_and_stream_options() -> None:
    req = openai.decode_chat_request(
        body(
            messages=CHAT,
            max_tokens=5,
            max_completion_tokens=7,
            temperature=0,
            top_p=0.5,
            stop="\n",
            seed=3,
            n=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert req.sampling == openai.Sampling(
        max_tokens=7, temperature=0.0, top_p=0.5, stop=("\n",), seed=3
    )
    assert (req.stream, req.include_usage) == (True, True)


@pytest.mark.parametrize(
    ("doc", "param", "message"),
    [
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "must be one of"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0]", "string or a list"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0]",
            "only text content parts",
        ),
        ({"messages": CHAT, "n": 2}, "n", "only n=1"),
        ({"messages": CHAT, "max_tokens": 0}, "max_tokens", "positive integer"),
        ({"messages": CHAT, "max_completion_tokens": "9"}, "max_completion_tokens", "positive"),
        ({"messages": CHAT, "temperature": 2.5}, "temperature", "from 0 to 2"),
        ({"messages": CHAT, "top_p": 0}, "top_p", "greater than 0"),
        ({"messages": CHAT, "stop": ["ok", ""]}, "stop", "non-empty string"),
        ({"messages": CHAT, "stop": ["x"] * 17}, "stop", "at most 16"),
        ({"messages": CHAT, "seed": 1.5}, "seed", "integer"),
        ({"messages": CHAT, "stream": "yes"}, "stream", "boolean"),
        ({"messages": CHAT, "stream_options": {"include_usage": True}}, "stream_options", "only"),
        ({"messages": CHAT, "logprobs": True}, "logprobs", "not supported"),
        ({"messages": CHAT, "tools": [{"type": "function"}]}, "tools", "not supported"),
        ({"messages": CHAT, "presence_penalty": 0.5}, "presence_penalty", "not supported"),
        ({"messages": CHAT, "response_format": {"type": "json_object"}}, "response_format", "text"),
        ({"messages": CHAT, "model": 7}, "model", "string"),
    ],
)
def test_chat_errors_name_the_param(doc: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        openai.decode_chat_request(json.dumps(doc).encode())
    assert caught.value.field == param


@pytest.mark.parametrize("raw", [b"", b"{nope", b"[1]"])
def test_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(Invalid) as caught:
        openai.decode_chat_request(raw)
    assert caught.value.field is None


def test_completion_requests() -> None:
    one = openai.decode_completion_request(body(prompt="hi", echo=True))
    assert (one.prompts, one.echo) == (["hi"], True)
    many = openai.decode_completion_request(body(prompt=["a", "b"], max_tokens=3))
    assert (many.prompts, many.sampling.max_tokens) == (["a", "b"], 3)


@pytest.mark.parametrize(
    ("doc", "param"),
    [
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": "x", "suffix": "y"}, "suffix"),
        ({"prompt": "x", "best_of": 2}, "best_of"),
        ({"prompt": "x", "logprobs": 2}, "logprobs"),
        ({"prompt": "x", "n": 3}, "n"),
    ],
)
def test_completion_errors(doc: dict[str, Any], param: str) -> None:
    with pytest.raises(Invalid) as caught:
        openai.decode_completion_request(json.dumps(doc).encode())
    assert caught.value.field == param


def test_embedding_requests() -> None:
    req = openai.decode_embedding_request(body(input="x"))
    assert (req.texts, req.encoding_format) == (["x"], "float")
    assert (
        openai.decode_embedding_request(
            body(input=["a", "b"], encoding_format="base64")
        ).encoding_format
        == "base64"
    )
    for doc, param in [
        ({"input": []}, "input"),
        ({"input": [[1, 2]]}, "input"),
        ({"input": ["ok", ""]}, "input"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "dimensions": 8}, "dimensions"),
    ]:
        with pytest.raises(Invalid) as caught:
            openai.decode_embedding_request(json.dumps(doc).encode())
        assert caught.value.field == param


def test_error_body() -> None:
    assert openai.error_body(400, "bad", param="n") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "n", "code": None}
    }
    assert openai.error_body(503, "busy")["error"]["type"] == "server_error"


def test_embeddings_base64_is_little_endian_float32() -> None:
    vectors = [[0.5, -1.0, 2.25], [1.0, 0.0, 0.0]]
    doc = openai.embeddings(vectors, model="m", prompt_tokens=4, encoding_format="base64")
    decoded = [
        np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4").tolist() for d in doc["data"]
    ]
    assert decoded == vectors
    assert doc["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    plain = openai.embeddings(vectors, model="m", prompt_tokens=4)
    assert [d["embedding"] for d in plain["data"]] == vectors
    assert [d["index"] for d in plain["data"]] == [0, 1]


def parse_sse(raw: bytes) -> list[Any]:
    """Each event is `data: <payload>` and a blank line; nothing else."""
    assert raw.endswith(b"\n\n")
    events = raw[:-2].split(b"\n\n")
    out: list[Any] = []
    for event in events:
        assert event.startswith(b"data: ")
        assert b"\n" not in event
        payload = event[len(b"data: ") :]
        out.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return out


def test_chat_stream_chunks_and_framing() -> None:
    enc = openai.ChatStream(id="c1", model="m", created=1, fingerprint="fp", include_usage=True)
    docs = [*enc.begin(), *enc.piece("Hel", None, 3, 1), *enc.piece("", None, 3, 1)]
    docs += [*enc.piece("lo\nthere", "length", 3, 2), *enc.end()]
    raw = b"".join(openai.sse(d) for d in docs) + openai.DONE
    events = parse_sse(raw)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello\nthere"
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish == [None, None, None, "length"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert all(c["usage"] is None for c in chunks[:-1])


def test_completion_stream_without_usage() -> None:
    enc = openai.CompletionStream(
        id="x", model="m", created=1, fingerprint="f", include_usage=False
    )
    docs = [*enc.piece(0, "a", None, 1, 1), *enc.piece(0, "", "stop", 1, 1)]
    docs += [*enc.piece(1, "b", "length", 2, 1), *enc.end()]
    assert [(d["choices"][0]["index"], d["choices"][0]["text"]) for d in docs] == [
        (0, "a"),
        (0, ""),
        (1, "b"),
    ]
    assert all("usage" not in d for d in docs)
    with_usage = openai.CompletionStream(
        id="x", model="m", created=1, fingerprint="f", include_usage=True
    )
    with_usage.piece(0, "a", "stop", 2, 1)
    with_usage.piece(1, "b", "stop", 3, 4)
    assert with_usage.end()[0]["usage"]["total_tokens"] == 10


def test_whole_responses() -> None:
    choice = openai.Choice("hi", None, 2, 1)
    chat = openai.chat_completion(choice, id="c", model="m", created=5, fingerprint="f")
    assert chat["choices"][0]["message"] == {"role": "assistant", "content": "hi"}
    assert chat["choices"][0]["finish_reason"] == "stop"
    assert chat["usage"]["total_tokens"] == 3
    both = openai.completion([choice, choice], id="c", model="m", created=5, fingerprint="f")
    assert [c["index"] for c in both["choices"]] == [0, 1]
    assert both["usage"]["prompt_tokens"] == 4
    assert openai.model_list("ep", created=1)["data"][0]["id"] == "ep"
