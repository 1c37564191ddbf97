"""JSON tensors <-> numpy arrays, and whole infer requests / responses.

A tensor on the wire: {"name", "datatype", "shape", "data", "parameters"?}. `data` may be
flat (row-major) or nested; its element count must equal the product of `shape`. BYTES
elements are JSON strings and decode to a numpy object array of `str`. The binary data
extension is not supported: such requests are refused with a clear message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from podium.core.errors import Invalid
from podium.core.tensors import DTYPES, Array, ModelMetadata, datatype_of
from podium.protocols.oip_v2.validation import check_inputs, check_outputs

# Element kinds (numpy `dtype.kind` of the parsed JSON) each datatype accepts.
_KINDS: dict[str, str] = {
    "BOOL": "b",
    **dict.fromkeys(("INT8", "INT16", "INT32", "INT64"), "iu"),
    **dict.fromkeys(("UINT8", "UINT16", "UINT32", "UINT64"), "iu"),
    **dict.fromkeys(("FP16", "FP32", "FP64"), "iuf"),
}


@dataclass(frozen=True, slots=True)
class InferRequest:
    inputs: dict[str, Array]
    parameters: dict[str, Any]
    outputs: tuple[str, ...] | None = None  # names the client asked for; None: all
    id: str | None = None


# ---------------------------------------------------------------------- tensors


def decode_tensor(obj: Any, where: str = "inputs[0]") -> tuple[str, Array]:
    """One JSON tensor as (name, array); Invalid (field `where`) when malformed."""
    if not isinstance(obj, dict):
        raise Invalid(f"{where} must be an object with name, datatype, shape, data", field=where)
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid(f"{where} has no name", field=where)
    datatype = obj.get("datatype")
    if datatype not in DTYPES:
        known = ", ".join(DTYPES)
        raise Invalid(
            f"input {name!r}: unknown datatype {datatype!r}; use one of {known}", field=where
        )
    shape = obj.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise Invalid(f"input {name!r}: shape must be a list of non-negative integers", field=where)
    params = obj.get("parameters") or {}
    if isinstance(params, dict) and "binary_data_size" in params:
        raise Invalid(
            f"input {name!r}: binary tensor data is not supported; send JSON data", field=where
        )
    if "data" not in obj:
        raise Invalid(f"input {name!r} has no data", field=where)
    arr = _array(obj["data"], datatype, name, where)
    count = math.prod(shape)
    if arr.size != count:
        raise Invalid(
            f"input {name!r}: shape {shape} needs {count} elements, data has {arr.size}",
            field=where,
        )
    return name, arr.reshape(shape)


def _array(data: Any, datatype: str, name: str, where: str) -> Array:
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat: list[Any] = []
        _flatten(data, flat)
        if not all(isinstance(x, str) for x in flat):
            raise Invalid(f"input {name!r}: BYTES data must be strings", field=where)
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out
    try:
        raw = np.asarray(data)
    except ValueError:
        raise Invalid(f"input {name!r}: nested data must be rectangular", field=where) from None
    dtype = DTYPES[datatype]
    if dtype.kind in "iu" and _big_integers_lost(raw):
        # numpy parsed integers beyond int64 as floats or objects: convert exactly instead.
        raw = _exact_integers(data, datatype, name, where)
    if raw.size and raw.dtype.kind not in _KINDS[datatype]:
        wanted = {"b": "true/false", "iu": "integers", "iuf": "numbers"}[_KINDS[datatype]]
        raise Invalid(f"input {name!r}: {datatype} data must be {wanted}", field=where)
    if raw.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise Invalid(f"input {name!r}: values out of range for {datatype}", field=where)
    return raw.astype(dtype, copy=False).ravel()


def _flatten(data: list[Any], out: list[Any]) -> None:
    for x in data:
        if isinstance(x, list):
            _flatten(x, out)
        else:
            out.append(x)


def encode_tensor(name: str, value: Any) -> dict[str, Any]:
    """An output array as a JSON tensor (data flattened, row-major)."""
    arr = np.asarray(value)
    datatype = datatype_of(arr.dtype)
    flat = arr.ravel().tolist()
    if datatype == "BYTES":
        flat = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in flat]
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": flat}


# ---------------------------------------------------------------------- requests


def decode_infer_request(body: bytes, metadata: ModelMetadata | None = None) -> InferRequest:
    """Parse `POST /v2/models/{m}/infer`; checked against `metadata` when given."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Invalid(f"the body is not valid JSON: {e}", field="body") from None
    if not isinstance(doc, dict):
        raise Invalid('the body must be a JSON object with "inputs"', field="body")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise Invalid('"inputs" must be a non-empty list of tensors', field="inputs")
    inputs: dict[str, Array] = {}
    for i, obj in enumerate(raw_inputs):
        name, arr = decode_tensor(obj, f"inputs[{i}]")
        if name in inputs:
            raise Invalid(f"input {name!r} is given twice", field=f"inputs[{i}]")
        inputs[name] = arr
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise Invalid('"parameters" must be an object', field="parameters")
    outputs = _requested_outputs(doc.get("outputs"))
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise Invalid('"id" must be a string', field="id")
    if metadata is not None:
        check_inputs(inputs, metadata)
        if outputs is not None:
            check_outputs(outputs, metadata)
    return InferRequest(inputs, parameters, outputs, request_id)


def _requested_outputs(raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise Invalid('"outputs" must be a list of {"name": …}', field="outputs")
    names: list[str] = []
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise Invalid(f"outputs[{i}] has no name", field=f"outputs[{i}]")
        names.append(name)
    return tuple(names) if names else None


def encode_infer_response(
    outputs: dict[str, Array],
    *,
    model_name: str,
    model_version: str | None = None,
    request: InferRequest | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The response document: the outputs the request asked for (all when it named none).

    A requested output the runtime did not produce is a runtime bug: RuntimeError.
    """
    wanted = request.outputs if request is not None else None
    names = list(outputs) if wanted is None else list(wanted)
    tensors = []
    for name in names:
        if name not in outputs:
            raise RuntimeError(f"the runtime produced no output {name!r}")
        tensors.append(encode_tensor(name, outputs[name]))
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        doc["model_version"] = model_version
    if request is not None and request.id is not None:
        doc["id"] = request.id
    if parameters:
        doc["parameters"] = parameters
    doc["outputs"] = tensors
    return doc


def _big_integers_lost(raw: Array) -> bool:
    if raw.dtype.kind == "O":
        return True
    return raw.dtype.kind == "f" and raw.size > 0 and bool(np.abs(raw).max() >= 2.0**63)


def _exact_integers(data: list[Any], datatype: str, name: str, where: str) -> Array:
    values: list[Any] = []
    _flatten(data, values)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise Invalid(f"input {name!r}: {datatype} data must be integers", field=where)
    info = np.iinfo(DTYPES[datatype])
    if any(v < info.min or v > info.max for v in values):
        raise Invalid(f"input {name!r}: values out of range for {datatype}", field=where)
    return np.array(values, dtype=DTYPES[datatype])
