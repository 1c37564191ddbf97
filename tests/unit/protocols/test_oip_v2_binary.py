"""The binary tensor data extension, both ways, against tritonclient's own codec.

tritonclient builds request bodies (`generate_request_body`) and parses response bodies
(`InferResult.from_response_body`) without any I/O, so the wire format is checked against
the official client itself.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import tritonclient.http as triton

from podium.core.errors import Invalid
from podium.core.tensors import DTYPES, ModelMetadata, TensorSpec
from podium.protocols.oip_v2 import decode_infer_request, encode_infer_body

ALL = frozenset(DTYPES) - {"FP32"}
META = ModelMetadata(
    "m",
    inputs=(TensorSpec("x", "FP32", (-1, -1), accepts=ALL),),
    outputs=(TensorSpec("y", "FP32", (-1, -1)), TensorSpec("n", "INT64", (1,))),
)

ARRAYS = {
    "BOOL": np.array([[True, False, True]]),
    "INT8": np.array([[-128, 0, 127]], dtype=np.int8),
    "INT16": np.array([[-32768, 1, 32767]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 1, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 1, 2**63 - 1]], dtype=np.int64),
    "UINT8": np.array([[0, 1, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1]], dtype=np.uint64),
    "FP16": np.array([[0.5, -1.0, 65504.0]], dtype=np.float16),
    "FP32": np.array([[0.5, -1.0, 3.25]], dtype=np.float32),
    "FP64": np.array([[0.5, -1.0, 1e300]], dtype=np.float64),
    "BYTES": np.array([["a", "héllo", ""]], dtype=object),
}


def triton_body(
    arr: np.ndarray,
    datatype: str,
    *,
    binary: bool,
    outputs: list[triton.InferRequestedOutput] | None = None,
) -> tuple[bytes, int | None]:
    x = triton.InferInput("x", list(arr.shape), datatype)
    x.set_data_from_numpy(arr, binary_data=binary)
    body, json_size = triton.InferenceServerClient.generate_request_body(
        [x], outputs=outputs, request_id="r1", parameters={"k": 1}
    )
    return body, json_size


@pytest.mark.parametrize("datatype", sorted(ARRAYS))
@pytest.mark.parametrize("binary", [True, False])
def test_requests_built_by_tritonclient_decode(datatype: str, binary: bool) -> None:
    arr = ARRAYS[datatype]
    body, json_size = triton_body(arr, datatype, binary=binary)
    header = None if json_size is None else str(json_size)
    request = decode_infer_request(body, META, header)
    got = request.inputs["x"]
    assert got.shape == arr.shape
    assert got.dtype == DTYPES[datatype]
    assert got.tolist() == arr.tolist()
    assert request.parameters == {"k": 1}  # binary_data_output is the protocol's, not the model's
    assert request.id == "r1"
    # No outputs named: tritonclient asks for every output in binary.
    assert request.binary_default is True


@pytest.mark.parametrize("datatype", sorted(ARRAYS))
def test_binary_responses_parse_in_tritonclient(datatype: str) -> None:
    arr = ARRAYS[datatype]
    body, json_size = triton_body(arr, datatype, binary=True)
    request = decode_infer_request(body, META, str(json_size))
    outputs = {"y": arr, "n": np.array([arr.size], dtype=np.int64)}
    payload, header_length = encode_infer_body(outputs, model_name="m", request=request)
    assert header_length is not None
    head = json.loads(payload[:header_length])
    assert head["outputs"][0]["parameters"]["binary_data_size"] > 0
    result = triton.InferResult.from_response_body(payload, header_length=header_length)
    y = result.as_numpy("y")
    assert y is not None
    if datatype == "BYTES":
        assert [b.decode() for b in y.ravel()] == arr.ravel().tolist()
    else:
        assert y.tolist() == arr.tolist()
    assert result.as_numpy("n").tolist() == [3]


def test_outputs_chosen_one_by_one() -> None:
    arr = ARRAYS["FP32"]
    outputs = [
        triton.InferRequestedOutput("y", binary_data=False),
        triton.InferRequestedOutput("n", binary_data=True),
    ]
    body, json_size = triton_body(arr, "FP32", binary=True, outputs=outputs)
    request = decode_infer_request(body, META, str(json_size))
    assert request.outputs == ("y", "n")
    payload, header_length = encode_infer_body(
        {"y": arr, "n": np.array([3])}, model_name="m", request=request
    )
    assert header_length is not None
    head = json.loads(payload[:header_length])
    assert head["outputs"][0]["data"] == [0.5, -1.0, 3.25]
    assert head["outputs"][1]["parameters"] == {"binary_data_size": 8}
    result = triton.InferResult.from_response_body(payload, header_length=header_length)
    assert result.as_numpy("n").tolist() == [3]


def test_json_only_when_nothing_binary_is_asked() -> None:
    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}]}
    ).encode()
    request = decode_infer_request(body, META)
    payload, header_length = encode_infer_body(
        {"y": np.ones((1, 1), np.float32)}, model_name="m", request=request
    )
    assert header_length is None
    assert json.loads(payload)["outputs"][0]["data"] == [1.0]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b, n: (b, None), "needs the Inference-Header-Content-Length header"),
        (lambda b, n: (b[:-1], str(n)), "binary_data_size 12 runs past the 11 bytes"),
        (lambda b, n: (b + b"xx", str(n)), "14 bytes of binary data but the inputs take 12"),
        (lambda b, n: (b, "nope"), "Inference-Header-Content-Length 'nope'"),
        (lambda b, n: (b, str(len(b) + 1)), "must be a length within"),
    ],
)
def test_malformed_binary_requests(mutate: object, message: str) -> None:
    body, json_size = triton_body(ARRAYS["FP32"], "FP32", binary=True)
    bad_body, header = mutate(body, json_size)  # type: ignore[operator]
    with pytest.raises(Invalid, match=message):
        decode_infer_request(bad_body, META, header)


def test_truncated_bytes_element() -> None:
    body, json_size = triton_body(ARRAYS["BYTES"], "BYTES", binary=True)
    head = json.loads(body[:json_size])
    head["inputs"][0]["parameters"]["binary_data_size"] -= 1
    new_head = json.dumps(head).encode()
    with pytest.raises(Invalid, match="BYTES element"):
        decode_infer_request(new_head + body[json_size:-1], META, str(len(new_head)))


def test_classification_extension_is_refused() -> None:
    outputs = [triton.InferRequestedOutput("y", class_count=2)]
    body, json_size = triton_body(ARRAYS["FP32"], "FP32", binary=False, outputs=outputs)
    with pytest.raises(Invalid, match="classification extension is not supported"):
        decode_infer_request(body, META, None if json_size is None else str(json_size))


def test_gzip_is_the_replicas_job_not_the_codecs() -> None:
    # The codec sees decompressed bytes; a compressed body is simply not JSON here.
    body, _ = triton_body(ARRAYS["FP32"], "FP32", binary=False)
    with pytest.raises(Invalid, match="not valid JSON"):
        decode_infer_request(gzip.compress(body), META)
