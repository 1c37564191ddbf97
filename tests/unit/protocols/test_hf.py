from __future__ import annotations

import json

import numpy as np
import pytest

from podium.core.errors import Invalid
from podium.protocols.hf import HfRequest, decode_request, encode_response


def test_decode_inputs_and_parameters() -> None:
    body = b'{"inputs": [[1, 2]], "parameters": {"top_k": 2}, "options": {"use_cache": false}}'
    assert decode_request(body) == HfRequest([[1, 2]], {"top_k": 2})


def test_parameters_default_to_empty() -> None:
    assert decode_request(b'{"inputs": "hi", "parameters": null}').parameters == {}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b"", "body", "empty"),
        (b"{not json", "body", "not valid JSON"),
        (b"\xff\xfe", "body", "not valid JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (b'{"input": 1}', "inputs", 'no "inputs"'),
        (b'{"inputs": null}', "inputs", "must not be null"),
        (b'{"inputs": 1, "parameters": [1]}', "parameters", "JSON object"),
    ],
)
def test_malformed_bodies(body: bytes, field: str, message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        decode_request(body)
    assert caught.value.field == field


def test_encode_numpy_values() -> None:
    out = {"a": np.arange(3), "b": np.float32(0.5), "c": (1, 2), "d": "é"}
    assert json.loads(encode_response(out)) == {"a": [0, 1, 2], "b": 0.5, "c": [1, 2], "d": "é"}


def test_encode_refuses_unknown_objects() -> None:
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        encode_response(object())
