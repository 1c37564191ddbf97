"""Tensor vocabulary shared by runtimes and the Open Inference Protocol v2 codec.

Runtimes describe what they take and return (`ModelMetadata`); the protocol codec turns
wire JSON into numpy arrays and checks them against that description. Both sides name
element types with the protocol's datatype strings (`FP32`, `INT64`, `BYTES`, …).

BYTES tensors are numpy object arrays whose elements are `str` (JSON carries text).
Purely data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

# Protocol datatype -> numpy dtype. BYTES maps to object (elements are str).
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

_BY_DTYPE: dict[np.dtype[Any], str] = {v: k for k, v in DTYPES.items()}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol datatype for a numpy dtype; strings and bytes arrays are BYTES."""
    if dtype.kind in "USO":
        return "BYTES"
    try:
        return _BY_DTYPE[dtype]
    except KeyError:
        raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


def dtype_of(datatype: str) -> np.dtype[Any]:
    """The numpy dtype for a protocol datatype; KeyError when unknown."""
    return DTYPES[datatype]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One named input or output. `shape` uses -1 for a variable dimension.

    `accepts` lists further datatypes a runtime takes for this input (converted by the
    runtime), e.g. an FP64 input that also accepts FP32.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    accepts: frozenset[str] = frozenset()

    def allows(self, datatype: str) -> bool:
        return datatype == self.datatype or datatype in self.accepts

    def fits(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """What a tensor runtime serves: `GET /v2/models/{name}` renders this."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    platform: str = ""
    versions: tuple[str, ...] = ()

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)
