"""The onnx runtime with real ONNX graphs built by tests/support/tiny_models.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from podium.core.errors import Invalid, LoadError
from podium.runtimes.base import RuntimeConfig
from podium.runtimes.onnx import OnnxRuntime
from podium.runtimes.registry import get_runtime
from tests.support.tiny_models import (
    build_linear_onnx,
    build_multi_dtype_onnx,
    build_sequence_output_onnx,
    export_torch_onnx,
    linear_expected,
)

ROWS = [[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 1.0], [-1.0, 0.5, 2.0, 0.0]]


def _load(path: Path, name: str = "lin") -> OnnxRuntime:
    rt = OnnxRuntime(RuntimeConfig(model_name=name, threads=1))
    rt.load(path)
    return rt


@pytest.fixture(scope="module")
def linear(tmp_path_factory: pytest.TempPathFactory) -> OnnxRuntime:
    return _load(build_linear_onnx(tmp_path_factory.mktemp("linear")))


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> OnnxRuntime:
    return _load(build_multi_dtype_onnx(tmp_path_factory.mktemp("multi")), "multi")


def test_a_model_exported_from_torch(tmp_path: Path) -> None:
    import torch

    folder, module = export_torch_onnx(tmp_path / "exported")
    rt = _load(folder, "clf")
    meta = rt.v2_metadata()
    assert [(t.name, t.datatype, t.shape) for t in meta.inputs] == [("features", "FP32", (-1, 4))]
    assert [(t.name, t.datatype) for t in meta.outputs] == [("probabilities", "FP32")]
    with torch.no_grad():
        expected = module(torch.tensor(ROWS)).numpy()
    np.testing.assert_allclose(np.asarray(rt.predict(ROWS, {})), expected, rtol=1e-5, atol=1e-6)


def test_registered() -> None:
    assert get_runtime("onnx") is OnnxRuntime


def test_metadata_from_the_graph(linear: OnnxRuntime, multi: OnnxRuntime) -> None:
    meta = linear.v2_metadata()
    assert meta.name == "lin" and meta.platform == "onnxruntime_onnx"
    assert [(t.name, t.datatype, t.shape) for t in meta.inputs] == [("x", "FP32", (-1, 4))]
    assert [(t.name, t.datatype, t.shape) for t in meta.outputs] == [
        ("y", "FP32", (-1, 3)),
        ("label", "INT64", (-1,)),
    ]
    assert linear.capabilities.tensor and linear.capabilities.batch
    types = {
        t.name: t.datatype for t in (*multi.v2_metadata().inputs, *multi.v2_metadata().outputs)
    }
    assert types == {
        "ids": "INT64",
        "mask": "BOOL",
        "scale": "FP64",
        "pixels": "UINT8",
        "text": "BYTES",
        "masked_ids": "INT64",
        "inverted": "BOOL",
        "doubled": "FP64",
        "half": "FP16",
        "text_out": "BYTES",
    }


def test_fixed_batch_is_not_batchable(tmp_path: Path) -> None:
    rt = _load(build_linear_onnx(tmp_path, batch=2))
    assert rt.v2_metadata().inputs[0].shape == (2, 4)
    assert not rt.capabilities.batch


def test_non_tensor_outputs_are_left_out(tmp_path: Path) -> None:
    rt = _load(build_sequence_output_onnx(tmp_path))
    assert [t.name for t in rt.v2_metadata().outputs] == ["y"]
    assert rt.predict([[1, 2, 3, 4]], {}) == [[1.0, 2.0, 3.0, 4.0]]  # one output: its list


def test_predict_rows(linear: OnnxRuntime) -> None:
    y, label = linear_expected(ROWS)
    out = linear.predict(ROWS, {})
    assert out["label"] == label
    np.testing.assert_allclose(out["y"], y, rtol=1e-6)
    one = linear.predict(ROWS[0], {})  # a single row is a batch of one
    assert one["label"] == label[:1]


def test_predict_batch_splits_results(linear: OnnxRuntime) -> None:
    requests = [ROWS[:1], ROWS[1:]]
    out = linear.predict_batch(requests, {})
    assert [o["label"] for o in out] == [linear_expected(r)[1] for r in requests]
    assert len(out[1]["y"]) == 2


def test_infer_requested_outputs(linear: OnnxRuntime) -> None:
    x = np.asarray(ROWS, dtype=np.float32)
    out = linear.infer({"x": x}, {}, frozenset({"label"}))
    assert list(out) == ["label"] and out["label"].dtype == np.int64
    assert out["label"].tolist() == linear_expected(ROWS)[1]
    assert set(linear.infer({"x": x}, {})) == {"y", "label"}


def test_several_inputs_and_datatypes(multi: OnnxRuntime) -> None:
    inputs = {
        "ids": [[1, 2, 3]],
        "mask": [[True, False, True]],
        "scale": [[1.25]],
        "pixels": [[3, 250]],
        "text": ["héllo"],
    }
    assert multi.predict(inputs, {}) == {
        "masked_ids": [[1, 0, 3]],
        "inverted": [[False, True, False]],
        "doubled": [[2.5]],
        "half": [[3.0, 250.0]],
        "text_out": ["héllo"],
    }
    tensors = {
        "ids": np.array([[1, 2, 3]], dtype=np.int64),
        "mask": np.array([[True, True, False]]),
        "scale": np.array([[2.0]]),
        "pixels": np.array([[1, 2]], dtype=np.uint8),
        "text": np.array(["a", "b"][:1], dtype=object),
    }
    out = multi.infer(tensors, {}, frozenset({"text_out", "half"}))
    assert out["text_out"].tolist() == ["a"] and out["half"].dtype == np.float16


def test_bad_hf_inputs_name_the_input(linear: OnnxRuntime, multi: OnnxRuntime) -> None:
    cases = [
        (linear, [[1.0, 2.0, 3.0]], "inputs.x", "shape [1, 3]; expected [-1, 4]"),
        (linear, [["a", "b", "c", "d"]], "inputs.x", "must hold FP32 values; got strings"),
        (linear, [[1, 2], [3]], "inputs.x", "nested list"),
        (linear, {"z": [[1, 2, 3, 4]]}, "inputs.z", "unknown input 'z'"),
        (multi, [[1, 2, 3]], "inputs", "several inputs"),
        (multi, {"ids": [[1, 2, 3]]}, "inputs.mask", "missing input 'mask'"),
        (multi, {**{k: [[1]] for k in ("mask", "scale", "pixels", "text")}, "ids": [[1.5] * 3]},
         "inputs.ids", "must hold INT64 values; got numbers"),
    ]  # fmt: skip
    for rt, inputs, field, text in cases:
        with pytest.raises(Invalid) as caught:
            rt.predict(inputs, {})
        assert caught.value.field == field, inputs
        assert text in str(caught.value)


@pytest.mark.parametrize("files", [[], ["a.onnx", "b.onnx"]])
def test_needs_exactly_one_onnx_file(tmp_path: Path, files: list[str]) -> None:
    (tmp_path / "README.md").write_text("hi")
    for name in files:
        build_linear_onnx(tmp_path, filename=name)
    with pytest.raises(LoadError) as caught:
        _load(tmp_path)
    message = str(caught.value)
    if files:
        assert "several ONNX files in the model (a.onnx, b.onnx)" in message
    else:
        assert message == "no ONNX model file (*.onnx) in the model; found: README.md"


def test_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(LoadError, match=r"model\.onnx could not be loaded by onnxruntime"):
        _load(tmp_path)
