"""Real ONNX test models, built with onnx.helper (no torch, no download).

Each builder writes `model.onnx` into `dest` (created if needed) and returns the folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The linear model: y = x @ W + b, label = argmax(y, axis=1).
LINEAR_W = np.array(
    [
        [1.0, 0.0, -1.0],
        [0.5, 2.0, 0.0],
        [0.0, -1.0, 3.0],
        [2.0, 0.5, 0.5],
    ],
    dtype=np.float32,
)
LINEAR_B = np.array([0.1, -0.2, 0.3], dtype=np.float32)
OPSET = 13
IR_VERSION = 8  # readable by every onnxruntime >= 1.10


def linear_expected(rows: list[list[float]]) -> tuple[list[list[float]], list[int]]:
    """What the linear model answers for `rows`: (y, label)."""
    y = np.asarray(rows, dtype=np.float32) @ LINEAR_W + LINEAR_B
    return y.tolist(), y.argmax(axis=1).tolist()


def _save(graph: object, dest: Path, filename: str) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])  # type: ignore[arg-type]
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    dest.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest / filename))
    return dest


def build_linear_onnx(dest: Path, *, batch: int | str = "N", filename: str = "model.onnx") -> Path:
    """Input "x" FP32 [batch, 4] -> "y" FP32 [batch, 3] = x @ W + b and "label" INT64 [batch].

    `batch` is a symbolic dimension name (variable batch) or a fixed size.
    """
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])
    label = helper.make_tensor_value_info("label", TensorProto.INT64, [batch])
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
        helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
    ]
    init = [numpy_helper.from_array(LINEAR_W, "W"), numpy_helper.from_array(LINEAR_B, "b")]
    graph = helper.make_graph(nodes, "linear", [x], [y, label], initializer=init)
    return _save(graph, dest, filename)


def build_multi_dtype_onnx(dest: Path) -> Path:
    """Several inputs and outputs of many datatypes:

    ids INT64 [N, 3], mask BOOL [N, 3]   -> masked_ids INT64 [N, 3] = ids * mask
                                         -> inverted BOOL [N, 3]    = not mask
    scale FP64 [N, 1]                    -> doubled FP64 [N, 1]     = scale * 2
    pixels UINT8 [N, 2]                  -> half FP16 [N, 2]        = float16(pixels)
    text BYTES (string) [N]              -> text_out BYTES [N]      (Identity)
    """
    from onnx import TensorProto, helper, numpy_helper

    t = TensorProto
    inputs = [
        helper.make_tensor_value_info("ids", t.INT64, ["N", 3]),
        helper.make_tensor_value_info("mask", t.BOOL, ["N", 3]),
        helper.make_tensor_value_info("scale", t.DOUBLE, ["N", 1]),
        helper.make_tensor_value_info("pixels", t.UINT8, ["N", 2]),
        helper.make_tensor_value_info("text", t.STRING, ["N"]),
    ]
    outputs = [
        helper.make_tensor_value_info("masked_ids", t.INT64, ["N", 3]),
        helper.make_tensor_value_info("inverted", t.BOOL, ["N", 3]),
        helper.make_tensor_value_info("doubled", t.DOUBLE, ["N", 1]),
        helper.make_tensor_value_info("half", t.FLOAT16, ["N", 2]),
        helper.make_tensor_value_info("text_out", t.STRING, ["N"]),
    ]
    nodes = [
        helper.make_node("Cast", ["mask"], ["mask_i"], to=t.INT64),
        helper.make_node("Mul", ["ids", "mask_i"], ["masked_ids"]),
        helper.make_node("Not", ["mask"], ["inverted"]),
        helper.make_node("Mul", ["scale", "two"], ["doubled"]),
        helper.make_node("Cast", ["pixels"], ["half"], to=t.FLOAT16),
        helper.make_node("Identity", ["text"], ["text_out"]),
    ]
    init = [numpy_helper.from_array(np.array(2.0, dtype=np.float64), "two")]
    graph = helper.make_graph(nodes, "multi_dtype", inputs, outputs, initializer=init)
    return _save(graph, dest, "model.onnx")


def build_sequence_output_onnx(dest: Path) -> Path:
    """Input "x" FP32 [N, 4] -> "y" FP32 [N, 4] (Identity) and "parts", a sequence of
    tensors (not servable as a tensor, like skl2onnx's ZipMap probabilities)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    parts = helper.make_tensor_sequence_value_info("parts", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("Identity", ["x"], ["y"]),
        helper.make_node("SequenceConstruct", ["x", "x"], ["parts"]),
    ]
    graph = helper.make_graph(nodes, "sequence_output", [x], [y, parts])
    return _save(graph, dest, "model.onnx")
