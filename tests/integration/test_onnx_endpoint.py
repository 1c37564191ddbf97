"""An onnx endpoint through a real `podium up`: HF style, Open Inference Protocol v2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.server import ServerProcess, wait_running
from tests.support.tiny_models import build_linear_onnx, linear_expected

ROWS = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]]


@pytest.fixture(scope="module")
def linear(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The endpoint `lin` (through the gateway, with the admin token)."""
    folder = build_linear_onnx(tmp_path_factory.mktemp("linear"))
    with server.client() as c:
        c.push_model(folder, "linear")
        c.deploy({"name": "lin", "model": "linear", "framework": "onnx"})
        wait_running(c, "lin", timeout=60)
    base = f"{server.url}/endpoints/lin"
    with httpx.Client(base_url=base, headers=server.headers, timeout=30) as http:
        yield http


def _infer(http: httpx.Client, inputs: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return http.post("/v2/models/lin/infer", json={"inputs": inputs, **extra})


def test_hf_style(linear: httpx.Client) -> None:
    y, label = linear_expected(ROWS)
    answer = linear.post("/", json={"inputs": ROWS})
    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == label
    np.testing.assert_allclose(answer.json()["y"], y, rtol=1e-6)


def test_v2_metadata_from_the_graph(linear: httpx.Client) -> None:
    meta = linear.get("/v2/models/lin").json()
    assert meta["name"] == "lin" and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "label", "datatype": "INT64", "shape": [-1]},
    ]


def test_v2_infer(linear: httpx.Client) -> None:
    y, label = linear_expected(ROWS)
    x = {"name": "x", "datatype": "FP32", "shape": [2, 4], "data": np.ravel(ROWS).tolist()}
    answer = _infer(linear, [x])
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["label"]["datatype"] == "INT64" and outputs["label"]["shape"] == [2]
    assert outputs["label"]["data"] == label
    assert outputs["y"]["shape"] == [2, 3]
    np.testing.assert_allclose(outputs["y"]["data"], np.ravel(y), rtol=1e-6)

    only = _infer(linear, [x], outputs=[{"name": "label"}])
    assert [o["name"] for o in only.json()["outputs"]] == ["label"]


@pytest.mark.parametrize(
    ("tensor", "text"),
    [
        ({"name": "z", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}, "'z'"),
        ({"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}, "shape [1, 3]"),
        ({"name": "x", "datatype": "INT64", "shape": [1, 4], "data": [1, 2, 3, 4]}, "INT64"),
    ],
)
def test_v2_bad_inputs_name_the_input(
    linear: httpx.Client, tensor: dict[str, Any], text: str
) -> None:
    answer = _infer(linear, [tensor])
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]  # the protocol's error document
    assert f"'{tensor['name']}'" in message and text in message


def test_hf_bad_input_names_it(linear: httpx.Client) -> None:
    answer = linear.post("/", json={"inputs": [[1.0, 2.0]]})
    assert answer.status_code == 422
    assert answer.json()["field"] == "inputs.x"
