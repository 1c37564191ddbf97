"""Open Inference Protocol v2 of a real replica, driven by the official `tritonclient.http`."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.unit.replica.bundles import write_tensor_bundle
from tests.unit.replica.conftest import MODEL_VERSION, Replica, launch

ARRAYS = {
    "BOOL": np.array([[True, False]]),
    "INT8": np.array([[-3, 5]], dtype=np.int8),
    "INT16": np.array([[-300, 5]], dtype=np.int16),
    "INT32": np.array([[-70000, 5]], dtype=np.int32),
    "INT64": np.array([[-(2**40), 5]], dtype=np.int64),
    "UINT8": np.array([[3, 100]], dtype=np.uint8),
    "UINT16": np.array([[3, 1000]], dtype=np.uint16),
    "UINT32": np.array([[3, 70000]], dtype=np.uint32),
    "UINT64": np.array([[3, 2**40]], dtype=np.uint64),
    "FP16": np.array([[0.5, -2.0]], dtype=np.float16),
    "FP32": np.array([[0.5, -2.0]], dtype=np.float32),
    "FP64": np.array([[0.5, -2.0]], dtype=np.float64),
    "BYTES": np.array([[b"ab", b"c\xc3\xa9"]], dtype=object),
}


@pytest.fixture(scope="module")
def tensors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    tmp = tmp_path_factory.mktemp("tensors")
    bundle = write_tensor_bundle(tmp / "bundle")
    replica = launch(tmp, runtime="python", model_path=bundle, endpoint="tensors")
    assert replica.proc.poll() is None, replica.log()
    yield replica
    assert replica.stop() == 0, replica.log()


def client(replica: Replica) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=f"127.0.0.1:{replica.port}")


def expected(datatype: str, arr: np.ndarray) -> list[object]:
    if datatype == "BYTES":
        return [[x.decode().upper().encode() for x in row] for row in arr]
    if datatype == "BOOL":
        return (~arr).tolist()
    return (arr * 2).tolist()


def test_health_and_metadata(tensors: Replica) -> None:
    with client(tensors) as c:
        assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("tensors")
        server = c.get_server_metadata()
        assert "binary_tensor_data" in server["extensions"]
        meta = c.get_model_metadata("tensors")
        assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}]
        assert [o["name"] for o in meta["outputs"]] == ["y", "count", "params"]
        assert meta["versions"] == [MODEL_VERSION]  # the model's, not the revision
        config = c.get_model_config("tensors")
        assert config["input"][0] == {"name": "x", "data_type": "TYPE_FP32", "dims": [-1, -1]}
        with pytest.raises(InferenceServerException, match="model 'other' not found"):
            c.get_model_metadata("other")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", sorted(ARRAYS))
def test_infer_every_datatype(tensors: Replica, datatype: str, binary: bool) -> None:
    arr = ARRAYS[datatype]
    x = triton.InferInput("x", list(arr.shape), datatype)
    x.set_data_from_numpy(arr, binary_data=binary)
    outputs = None
    if not binary:  # ask for JSON outputs too
        outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("y", "count")]
    with client(tensors) as c:
        result = c.infer("tensors", [x], outputs=outputs, request_id="r7")
    y = result.as_numpy("y")
    assert y is not None and y.shape == arr.shape
    got = y.tolist()
    if datatype == "BYTES" and not binary:
        got = [[v.encode() if isinstance(v, str) else v for v in row] for row in got]
    assert got == expected(datatype, arr)
    assert result.as_numpy("count").tolist() == [2]
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (
        "tensors",
        MODEL_VERSION,
        "r7",
    )


def test_request_parameters_reach_the_model(tensors: Replica) -> None:
    x = triton.InferInput("x", [1, 1], "FP32")
    x.set_data_from_numpy(np.ones((1, 1), np.float32))
    with client(tensors) as c:
        result = c.infer("tensors", [x], parameters={"temperature": 2, "tag": "a"})
    [params] = result.as_numpy("params").tolist()
    assert json.loads(params) == {"tag": "a", "temperature": 2}


def test_gzip_request_and_response_headers(tensors: Replica) -> None:
    x = triton.InferInput("x", [1, 2], "FP32")
    x.set_data_from_numpy(np.array([[1, 2]], np.float32))
    with client(tensors) as c:
        result = c.infer("tensors", [x], request_compression_algorithm="gzip")
    assert result.as_numpy("y").tolist() == [[2.0, 4.0]]
    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [3]}]}
    ).encode()
    r = httpx.post(
        tensors.url + "/v2/models/tensors/infer",
        content=gzip.compress(body),
        headers={"content-encoding": "gzip"},
    )
    assert r.status_code == 200
    assert "inference-header-content-length" not in r.headers
    assert r.json()["outputs"][0]["data"] == [6.0]


def test_errors_name_the_input_and_what_was_expected(tensors: Replica) -> None:
    x = triton.InferInput("x", [3], "FP32")
    x.set_data_from_numpy(np.ones(3, np.float32))
    with client(tensors) as c, pytest.raises(InferenceServerException) as caught:
        c.infer("tensors", [x])
    assert "input 'x' has shape [3]; expected [-1, -1]" in str(caught.value)
    wrong = triton.InferInput("features", [1, 1], "FP32")
    wrong.set_data_from_numpy(np.ones((1, 1), np.float32))
    with client(tensors) as c, pytest.raises(InferenceServerException) as caught:
        c.infer("tensors", [wrong])
    assert "unknown input 'features'; model 'tensors' takes x (FP32 or" in str(caught.value)
    r = httpx.post(tensors.url + "/v2/models/tensors/infer", content=b"{}")
    assert (r.status_code, r.json()) == (
        422,
        {"error": '"inputs" must be a non-empty list of tensors'},
    )


def test_sklearn_through_tritonclient(iris: Replica) -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    x = triton.InferInput("input-0", list(rows.shape), "FP64")
    x.set_data_from_numpy(rows)
    with client(iris) as c:
        result = c.infer("iris", [x])
    assert result.as_numpy("predict").tolist() == [0, 2]
    assert result.as_numpy("predict_proba").shape == (2, 3)
    r = httpx.get(iris.url + "/v1/models")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "the sklearn runtime does not serve the OpenAI API"
