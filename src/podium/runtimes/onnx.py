"""ONNX runtime (onnxruntime, CPU): one `*.onnx` file per model folder.

The graph's inputs and outputs are the model's tensors, so the Open Inference Protocol v2
metadata comes straight from the graph: names, datatypes (`tensor(float)` -> FP32, …) and
shapes, with -1 for symbolic or unknown dimensions. The replica checks v2 requests
against that metadata before `infer` runs.

Requests (Hugging Face style): `inputs` is a list of rows for a model with one input, or a
dict of input name -> nested list for several. A model whose input has a batch dimension
also takes a single row (it is sent as a batch of one). The answer is a dict of output
name -> nested list; a model with a single output answers just that list.

Dynamic batching (`capabilities.batch`) is on when every input's first dimension is
variable: requests are concatenated along dimension 0, run once, and split back.

Inputs must be tensors of the types in `ONNX_DATATYPES`; outputs of other kinds (such as
the `seq(map(…))` probabilities of scikit-learn classifiers converted with ZipMap) are
left out of the metadata and never computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from podium.core.errors import Invalid, LoadError
from podium.core.tensors import Array, ModelMetadata, TensorSpec, dtype_of
from podium.runtimes.base import Capabilities, Runtime, RuntimeConfig

SUFFIX = ".onnx"
PLATFORM = "onnxruntime_onnx"  # what Triton calls it, so tritonclient users feel at home

# ONNX element type (as onnxruntime names it) -> protocol datatype.
ONNX_DATATYPES: dict[str, str] = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}

# numpy dtype kinds that JSON values may have for each datatype (HF-style requests).
_KINDS: dict[str, str] = {
    "BOOL": "b",
    "BYTES": "U",
    **dict.fromkeys(("INT8", "INT16", "INT32", "INT64"), "iu"),
    **dict.fromkeys(("UINT8", "UINT16", "UINT32", "UINT64"), "iu"),
    **dict.fromkeys(("FP16", "FP32", "FP64"), "iuf"),
}


class OnnxRuntime(Runtime):
    name = "onnx"
    capabilities = Capabilities(tensor=True)

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.session: Any = None
        self.inputs: tuple[TensorSpec, ...] = ()
        self.outputs: tuple[TensorSpec, ...] = ()

    # ------------------------------------------------------------------ loading

    def load(self, path: Path) -> None:
        import onnxruntime as ort

        file = find_onnx_file(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, self.config.threads)
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(file), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own types for bad graphs and files
            raise LoadError(f"{file.name} could not be loaded by onnxruntime: {e}") from e
        self.inputs = tuple(_spec(arg, "input") for arg in session.get_inputs())
        # Outputs that are not tensors (e.g. skl2onnx's ZipMap `seq(map(…))`) are left out.
        tensors = [a for a in session.get_outputs() if str(a.type) in ONNX_DATATYPES]
        if not tensors:
            found = ", ".join(f"{a.name} ({a.type})" for a in session.get_outputs())
            raise LoadError(f"{file.name} has no tensor outputs the onnx runtime serves: {found}")
        self.outputs = tuple(_spec(arg, "output") for arg in tensors)
        batchable = bool(self.inputs) and all(
            len(s.shape) >= 1 and s.shape[0] == -1 for s in self.inputs
        )
        self.capabilities = Capabilities(tensor=True, batch=batchable)
        self.session = session

    def health(self) -> bool:
        return self.session is not None

    # ------------------------------------------------------------------ tensors

    def v2_metadata(self) -> ModelMetadata:
        return ModelMetadata(
            name=self.config.model_name,
            platform=PLATFORM,
            inputs=self.inputs,
            outputs=self.outputs,
        )

    def infer(
        self,
        inputs: dict[str, Array],
        parameters: dict[str, Any],
        outputs: frozenset[str] | None = None,
    ) -> dict[str, Array]:
        names = [s.name for s in self.outputs if outputs is None or s.name in outputs]
        return dict(zip(names, self._run(inputs, names), strict=True))

    def _run(self, feed: dict[str, Array], names: list[str]) -> list[Array]:
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

        try:
            return [np.asarray(a) for a in self.session.run(names, feed)]
        except InvalidArgument as e:  # values the graph refuses (e.g. mismatched dims)
            raise Invalid(f"onnxruntime refused the inputs: {e}", field="inputs") from None

    # ------------------------------------------------------------------ HF style

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        feed, _ = self._feed(inputs)
        return self._answer(self._run(feed, self._output_names()), slice(None))

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        if not self.capabilities.batch or len(inputs) < 2:
            return [self.predict(item, parameters) for item in inputs]
        feeds = [self._feed(item) for item in inputs]
        try:
            merged = {
                s.name: np.concatenate([feed[s.name] for feed, _ in feeds]) for s in self.inputs
            }
        except ValueError:  # the requests' other dimensions differ: run them one by one
            return [self.predict(item, parameters) for item in inputs]
        total = sum(rows for _, rows in feeds)
        results = self._run(merged, self._output_names())
        if not all(r.ndim >= 1 and r.shape[0] == total for r in results):
            return [self.predict(item, parameters) for item in inputs]
        out, start = [], 0
        for _, rows in feeds:
            out.append(self._answer(results, slice(start, start + rows)))
            start += rows
        return out

    def _output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def _answer(self, results: list[Array], rows: slice) -> Any:
        values = {s.name: r[rows].tolist() for s, r in zip(self.outputs, results, strict=True)}
        return next(iter(values.values())) if len(values) == 1 else values

    def _feed(self, inputs: Any) -> tuple[dict[str, Array], int]:
        """One request's `inputs` as arrays by input name, and its number of rows."""
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - {s.name for s in self.inputs})
            if unknown:
                raise Invalid(
                    f"unknown input {unknown[0]!r}; the model takes {self._takes()}",
                    field=f"inputs.{unknown[0]}",
                )
            missing = [s.name for s in self.inputs if s.name not in inputs]
            if missing:
                raise Invalid(
                    f"missing input {missing[0]!r}; the model takes {self._takes()}",
                    field=f"inputs.{missing[0]}",
                )
            given = {s.name: inputs[s.name] for s in self.inputs}
        elif len(self.inputs) == 1:
            given = {self.inputs[0].name: inputs}
        else:
            raise Invalid(
                f"this model has several inputs; send a dict of name -> values: {self._takes()}",
                field="inputs",
            )
        feed = {s.name: _to_array(given[s.name], s) for s in self.inputs}
        first = feed[self.inputs[0].name]
        return feed, int(first.shape[0]) if first.ndim else 1

    def _takes(self) -> str:
        return ", ".join(_describe(s) for s in self.inputs)


# ---------------------------------------------------------------------- helpers


def find_onnx_file(path: Path) -> Path:
    """The one `*.onnx` file at `path` (the file itself, or the only one in the folder)."""
    if path.is_file():
        if path.suffix.lower() == SUFFIX:
            return path
        raise LoadError(f"{path.name} is not an ONNX model file (.onnx)")
    if not path.is_dir():
        raise LoadError(f"model path {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file())
    found = [p for p in files if p.suffix.lower() == SUFFIX]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(p.name for p in found)
        raise LoadError(f"several ONNX files in the model ({names}); keep exactly one")
    listing = ", ".join(p.name for p in files[:20]) or "nothing"
    raise LoadError(f"no ONNX model file (*.onnx) in the model; found: {listing}")


def _spec(arg: Any, kind: str) -> TensorSpec:
    """A graph input or output (onnxruntime NodeArg) as a TensorSpec."""
    datatype = ONNX_DATATYPES.get(str(arg.type))
    if datatype is None:
        raise LoadError(
            f"{kind} {arg.name!r} has type {arg.type}, which the onnx runtime cannot serve; "
            f"supported: {', '.join(ONNX_DATATYPES)}"
        )
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or ()))
    return TensorSpec(arg.name, datatype, shape)


def _describe(spec: TensorSpec) -> str:
    return f"{spec.name} ({spec.datatype}, shape {list(spec.shape)})"


def _to_array(value: Any, spec: TensorSpec) -> Array:
    """JSON values for one input as an array of its dtype and shape; Invalid naming it."""
    field = f"inputs.{spec.name}"
    try:
        raw = np.asarray(value)
    except ValueError:
        raise Invalid(
            f"input {spec.name!r} must be a nested list of equal-length rows", field=field
        ) from None
    if raw.size == 0:
        raise Invalid(f"input {spec.name!r} is empty", field=field)
    if raw.dtype.kind not in _KINDS[spec.datatype]:
        raise Invalid(
            f"input {spec.name!r} must hold {spec.datatype} values; got {_kind_name(raw)}",
            field=field,
        )
    arr = raw.astype(dtype_of(spec.datatype))
    if spec.shape and arr.ndim == len(spec.shape) - 1 and spec.shape[0] == -1:
        arr = arr[np.newaxis, ...]  # one row of a batched input
    if not spec.fits(tuple(arr.shape)):
        raise Invalid(
            f"input {spec.name!r} has shape {list(arr.shape)}; expected {list(spec.shape)}"
            " (-1: any size)",
            field=field,
        )
    return arr


def _kind_name(arr: Array) -> str:
    return {
        "b": "booleans",
        "i": "integers",
        "u": "integers",
        "f": "numbers",
        "U": "strings",
        "O": "mixed or nested values of unequal length",
    }.get(arr.dtype.kind, str(arr.dtype))
