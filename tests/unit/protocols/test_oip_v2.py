from __future__ import annotations

import json

import numpy as np
import pytest

from podium.core.errors import Invalid
from podium.core.tensors import DTYPES, ModelMetadata, TensorSpec, datatype_of
from podium.protocols.oip_v2 import (
    decode_infer_request,
    decode_tensor,
    encode_infer_response,
    encode_tensor,
    model_metadata,
    server_metadata,
)

SAMPLES: dict[str, list[object]] = {
    "BOOL": [True, False, True, True, False, False],
    "INT8": [-128, 0, 1, 2, 3, 127],
    "INT16": [-32768, 0, 1, 2, 3, 32767],
    "INT32": [-(2**31), 0, 1, 2, 3, 2**31 - 1],
    "INT64": [-(2**63), 0, 1, 2, 3, 2**63 - 1],
    "UINT8": [0, 1, 2, 3, 4, 255],
    "UINT16": [0, 1, 2, 3, 4, 65535],
    "UINT32": [0, 1, 2, 3, 4, 2**32 - 1],
    "UINT64": [0, 1, 2, 3, 4, 2**64 - 1],
    "FP16": [0.5, -1.0, 2.0, 0.25, 8.0, 1.5],
    "FP32": [0.5, -1.0, 2.0, 0.25, 8.0, 1.5],
    "FP64": [0.1, -1e300, 2.0, 0.25, 8.0, 1.5],
    "BYTES": ["a", "b", "é", "", "long text", "z"],
}


def tensor(name: str, datatype: str, shape: list[int], data: object) -> dict[str, object]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def test_samples_cover_every_datatype() -> None:
    assert set(SAMPLES) == set(DTYPES)


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
@pytest.mark.parametrize("nested", [False, True])
def test_round_trip(datatype: str, nested: bool) -> None:
    flat = SAMPLES[datatype]
    data = [flat[:3], flat[3:]] if nested else flat
    name, arr = decode_tensor(tensor("x", datatype, [2, 3], data))
    assert name == "x"
    assert arr.shape == (2, 3)
    assert arr.dtype == DTYPES[datatype]
    assert datatype_of(arr.dtype) == datatype
    assert encode_tensor("y", arr) == tensor("y", datatype, [2, 3], flat) | {"name": "y"}


def test_numpy_strings_encode_as_bytes() -> None:
    assert encode_tensor("s", np.array(["setosa", "virginica"]))["datatype"] == "BYTES"


def test_scalar_and_empty_tensors() -> None:
    assert decode_tensor(tensor("s", "FP32", [], 1.5))[1].shape == ()
    assert decode_tensor(tensor("e", "INT32", [0, 4], []))[1].shape == (0, 4)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (tensor("x", "FP32", [2, 2], [1, 2, 3]), r"shape \[2, 2\] needs 4 elements, data has 3"),
        (tensor("x", "FP8", [1], [1]), "unknown datatype 'FP8'"),
        (tensor("x", "INT32", [1], [1.5]), "INT32 data must be integers"),
        (tensor("x", "BOOL", [1], [1]), "BOOL data must be true/false"),
        (tensor("x", "FP64", [1], ["a"]), "FP64 data must be numbers"),
        (tensor("x", "BYTES", [1], [1]), "BYTES data must be strings"),
        (tensor("x", "UINT8", [1], [256]), "out of range for UINT8"),
        (tensor("x", "INT8", [1], [-129]), "out of range for INT8"),
        (tensor("x", "FP32", [2, 2], [[1, 2], [3]]), "rectangular"),
        (tensor("x", "FP32", [-1], [1]), "non-negative integers"),
        ({"name": "x", "datatype": "FP32", "shape": [1]}, "has no data"),
        ({"datatype": "FP32", "shape": [1], "data": [1]}, "has no name"),
    ],
)
def test_malformed_tensors(obj: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        decode_tensor(obj, "inputs[0]")
    assert caught.value.field == "inputs[0]"


META = ModelMetadata(
    name="iris",
    platform="sklearn",
    inputs=(TensorSpec("input-0", "FP64", (-1, 4), accepts=frozenset({"FP32"})),),
    outputs=(TensorSpec("predict", "INT64", (-1,)), TensorSpec("predict_proba", "FP64", (-1, 3))),
)


def request(*inputs: dict[str, object], **extra: object) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def test_decode_request_checks_metadata() -> None:
    body = request(
        tensor("input-0", "FP32", [1, 4], [1, 2, 3, 4]),
        id="r1",
        parameters={"p": 1},
        outputs=[{"name": "predict"}],
    )
    req = decode_infer_request(body, META)
    assert req.inputs["input-0"].dtype == np.float32
    assert (req.id, req.parameters, req.outputs) == ("r1", {"p": 1}, ("predict",))


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            request(tensor("features", "FP64", [1, 4], [1, 2, 3, 4])),
            "inputs.features",
            r"unknown input 'features'; model 'iris' takes "
            r"input-0 \(FP64 or FP32, shape \[-1, 4\]\)",
        ),
        (
            request(tensor("input-0", "FP64", [1, 3], [1, 2, 3])),
            "inputs.input-0",
            r"input 'input-0' has shape \[1, 3\]; expected \[-1, 4\]",
        ),
        (
            request(tensor("input-0", "INT32", [1, 4], [1, 2, 3, 4])),
            "inputs.input-0",
            "input 'input-0' has datatype INT32; expected FP64 or FP32",
        ),
        (
            request(tensor("input-0", "FP64", [1, 4], [1, 2, 3, 4]), outputs=[{"name": "nope"}]),
            "outputs.nope",
            "unknown output 'nope'; model 'iris' has predict, predict_proba",
        ),
        (b'{"inputs": []}', "inputs", "non-empty list"),
        (b"nope", "body", "not valid JSON"),
        (
            request(
                tensor("input-0", "FP64", [1, 4], [1, 2, 3, 4]),
                tensor("input-0", "FP64", [1, 4], [1, 2, 3, 4]),
            ),
            "inputs[1]",
            "given twice",
        ),
    ],
)
def test_request_errors_name_the_input(body: bytes, field: str, message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        decode_infer_request(body, META)
    assert caught.value.field == field


def test_missing_input() -> None:
    meta = ModelMetadata("m", (TensorSpec("a", "FP32", (1,)), TensorSpec("b", "FP32", (1,))), ())
    with pytest.raises(Invalid, match=r"missing input b \(FP32, shape \[1\]\)"):
        decode_infer_request(request(tensor("a", "FP32", [1], [1])), meta)


def test_encode_response_honours_requested_outputs() -> None:
    req = decode_infer_request(
        request(
            tensor("input-0", "FP64", [1, 4], [1, 2, 3, 4]), id="abc", outputs=[{"name": "predict"}]
        ),
        META,
    )
    outputs = {"predict": np.array([2]), "predict_proba": np.zeros((1, 3))}
    doc = encode_infer_response(outputs, model_name="iris", model_version="4", request=req)
    assert doc == {
        "model_name": "iris",
        "model_version": "4",
        "id": "abc",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [1], "data": [2]}],
    }
    everything = encode_infer_response(outputs, model_name="iris", parameters={"k": 1})
    assert [o["name"] for o in everything["outputs"]] == ["predict", "predict_proba"]
    assert everything["parameters"] == {"k": 1}


def test_metadata_documents() -> None:
    assert server_metadata("1.0") == {"name": "podium", "version": "1.0", "extensions": []}
    assert model_metadata(META, "3") == {
        "name": "iris",
        "versions": ["3"],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ],
    }
