"""TGI-style text generation over `POST /`: parameters and the stream's events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from huggingface_hub import TextGenerationOutput, TextGenerationStreamOutput

from podium.core.errors import Invalid
from podium.protocols import hf


def decode(doc: dict[str, Any]) -> hf.GenerateRequest:
    return hf.decode_generate(hf.decode_request(json.dumps(doc).encode()))


def test_greedy_unless_sampling_is_asked_for() -> None:
    assert decode({"inputs": "x"}).params.temperature == 0.0
    assert decode({"inputs": "x", "parameters": {"do_sample": True}}).params.temperature == 1.0
    assert decode({"inputs": "x", "parameters": {"temperature": 0.7}}).params.temperature == 0.7
    assert decode({"inputs": "x", "parameters": {"top_p": 0.9}}).params.temperature == 1.0


def test_parameters_and_stream() -> None:
    req = decode(
        {
            "inputs": "x",
            "stream": True,
            "parameters": {
                "max_new_tokens": 4,
                "stop": ["\n"],
                "seed": 1,
                "details": True,
                "return_full_text": True,
                "unknown_key": 1,
            },
        }
    )
    assert req.stream and req.prompts == ["x"]
    assert req.params == hf.GenerateParams(
        max_new_tokens=4, stop=("\n",), seed=1, details=True, return_full_text=True
    )
    assert decode({"inputs": ["a", "b"]}).prompts == ["a", "b"]
    older = decode({"inputs": "x", "parameters": {"stop_sequences": ["."]}})
    assert older.params.stop == (".",)


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ({"inputs": 3}, "inputs", "the prompt"),
        ({"inputs": ["a", "b"], "stream": True}, "inputs", "one prompt"),
        ({"inputs": "x", "parameters": {"top_k": 5}}, "parameters.top_k", "top_k"),
        ({"inputs": "x", "parameters": {"best_of": 2}}, "parameters.best_of", "best_of"),
        (
            {"inputs": "x", "parameters": {"max_new_tokens": 0}},
            "parameters.max_new_tokens",
            "positive",
        ),
        ({"inputs": "x", "parameters": {"temperature": -1}}, "parameters.temperature", "from 0"),
        ({"inputs": "x", "parameters": {"stop": "\n"}}, None, None),
        ({"inputs": "x", "parameters": {"details": "yes"}}, "parameters.details", "true or false"),
    ],
)
def test_parameter_errors(doc: dict[str, Any], field: str | None, message: str | None) -> None:
    if field is None:
        assert decode(doc).params.stop == ("\n",)  # a single string is accepted too
        return
    with pytest.raises(Invalid, match=message) as caught:
        decode(doc)
    assert caught.value.field == field


def test_whole_answer_parses_as_huggingface_hub_output() -> None:
    params = hf.GenerateParams(details=True, return_full_text=True)
    doc = hf.generated("Hi", [" a", " b"], "length", params, prompt_tokens=1, completion_tokens=2)
    out = TextGenerationOutput.parse_obj_as_instance(json.dumps(doc))
    assert out.generated_text == "Hi a b"
    assert out.details is not None
    assert (out.details.finish_reason, out.details.generated_tokens) == ("length", 2)
    assert [t.text for t in out.details.tokens] == [" a", " b"]


def test_stream_events_parse_as_huggingface_hub_output() -> None:
    stream = hf.GenerateStream("Hi", hf.GenerateParams(details=True))
    docs = [
        *stream.piece(" a", None, 1, 1),
        *stream.piece("", None, 1, 1),  # nothing new: no event
        *stream.piece(" b", None, 1, 2),
        *stream.piece("", "stop", 1, 2),
    ]
    events = [TextGenerationStreamOutput.parse_obj_as_instance(json.dumps(d)) for d in docs]
    assert [e.token.text for e in events] == [" a", " b", ""]
    assert [e.index for e in events] == [1, 2, 3]
    assert [e.generated_text for e in events] == [None, None, " a b"]
    assert events[-1].token.special
    assert events[-1].details is not None
    assert events[-1].details.finish_reason == "eos_token"
    raw = hf.sse(docs[0])
    assert raw.startswith(b"data: {") and raw.endswith(b"}\n\n")


def test_feature_extraction_root_keys_become_parameters() -> None:
    req = hf.decode_request(b'{"inputs": "x", "normalize": true, "truncate": null}')
    assert req.parameters == {"normalize": True}
