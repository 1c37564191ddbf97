"""JSON tensors <-> numpy arrays, and whole infer requests / responses.

A tensor on the wire: {"name", "datatype", "shape", "data", "parameters"?}. `data` may be
flat (row-major) or nested; its element count must equal the product of `shape`. BYTES
elements are JSON strings and decode to a numpy object array of `str`. With the binary
data extension (`binary.py`) a tensor's `parameters.binary_data_size` says how many bytes
of the body after the JSON header are its data, and outputs are sent the same way when
the request asks for it (`parameters.binary_data_output`, or an output's
`parameters.binary_data`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

import podium.protocols.oip_v2.binary as binary
from podium.core.errors import Invalid
from podium.core.jsondepth import check_depth
from podium.core.tensors import DTYPES, Array, ModelMetadata, datatype_of
from podium.protocols.oip_v2.binary import encode as binary_encode
from podium.protocols.oip_v2.validation import check_inputs, check_outputs

# Request parameters the protocol itself uses; not passed to the runtime.
RESERVED_PARAMETERS = frozenset({"binary_data_output"})

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
    binary_outputs: frozenset[str] = frozenset()  # outputs to send as binary data
    binary_default: bool = False  # outputs not named in `outputs` go binary too

    def is_binary(self, name: str) -> bool:
        if self.outputs is not None and name in self.outputs:
            return name in self.binary_outputs
        return self.binary_default


# ---------------------------------------------------------------------- tensors


def decode_tensor(
    obj: Any, where: str = "inputs[0]", raw: bytes | None = None
) -> tuple[str, Array]:
    """One JSON tensor as (name, array); Invalid (field `where`) when malformed.

    `raw`: its binary data, when its `parameters.binary_data_size` said it has some.
    """
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
    if raw is not None:
        if "data" in obj:
            raise Invalid(f"input {name!r} has both data and binary data", field=where)
        return name, binary.decode(raw, datatype, shape, name, where)
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


def decode_infer_request(
    body: bytes, metadata: ModelMetadata | None = None, header_length: str | None = None
) -> InferRequest:
    """Parse `POST /v2/models/{m}/infer`; checked against `metadata` when given.

    `header_length`: the `Inference-Header-Content-Length` header (binary data follows
    the JSON header), or None.
    """
    head, data = binary.split_body(body, header_length)
    check_depth(head)
    try:
        doc = json.loads(head)
    except (ValueError, UnicodeDecodeError) as e:
        hint = ""
        if header_length is None and b"binary_data_size" in head:
            hint = " (binary tensor data needs the Inference-Header-Content-Length header)"
        raise Invalid(f"the body is not valid JSON: {e}{hint}", field="body") from None
    if not isinstance(doc, dict):
        raise Invalid('the body must be a JSON object with "inputs"', field="body")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise Invalid('"inputs" must be a non-empty list of tensors', field="inputs")
    inputs: dict[str, Array] = {}
    offset = 0
    for i, obj in enumerate(raw_inputs):
        where = f"inputs[{i}]"
        size = _binary_size(obj, where)
        raw = None
        if size is not None:
            if offset + size > len(data):
                raise Invalid(
                    f"{where}: binary_data_size {size} runs past the {len(data)} bytes of "
                    "binary data (is the Inference-Header-Content-Length header missing?)",
                    field=where,
                )
            raw = data[offset : offset + size]
            offset += size
        name, arr = decode_tensor(obj, where, raw)
        if name in inputs:
            raise Invalid(f"input {name!r} is given twice", field=where)
        inputs[name] = arr
    if offset != len(data):
        raise Invalid(
            f"the body has {len(data)} bytes of binary data but the inputs take {offset}",
            field="inputs",
        )
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise Invalid('"parameters" must be an object', field="parameters")
    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise Invalid("binary_data_output must be true or false", field="parameters")
    parameters = {k: v for k, v in parameters.items() if k not in RESERVED_PARAMETERS}
    outputs, binary_outputs = _requested_outputs(doc.get("outputs"))
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise Invalid('"id" must be a string', field="id")
    if metadata is not None:
        check_inputs(inputs, metadata)
        if outputs is not None:
            check_outputs(outputs, metadata)
    return InferRequest(
        inputs, parameters, outputs, request_id, frozenset(binary_outputs), binary_default
    )


def _binary_size(obj: Any, where: str) -> int | None:
    params = obj.get("parameters") if isinstance(obj, dict) else None
    if not isinstance(params, dict) or params.get("binary_data_size") is None:
        return None
    size = params["binary_data_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise Invalid(f"{where}: binary_data_size must be a non-negative integer", field=where)
    return size


def _requested_outputs(raw: Any) -> tuple[tuple[str, ...] | None, set[str]]:
    if raw is None:
        return None, set()
    if not isinstance(raw, list):
        raise Invalid('"outputs" must be a list of {"name": …}', field="outputs")
    names: list[str] = []
    binary_names: set[str] = set()
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise Invalid(f"outputs[{i}] has no name", field=f"outputs[{i}]")
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise Invalid(f"outputs[{i}].parameters must be an object", field=f"outputs[{i}]")
        if params.get("classification"):
            raise Invalid(
                f"output {name!r}: the classification extension is not supported",
                field=f"outputs[{i}]",
            )
        if params.get("binary_data"):
            binary_names.add(name)
        names.append(name)
    return (tuple(names) if names else None), binary_names


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
    doc, _ = _response(outputs, model_name, model_version, request, parameters, binary=False)
    return doc


def encode_infer_body(
    outputs: dict[str, Array],
    *,
    model_name: str,
    model_version: str | None = None,
    request: InferRequest | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """The response body, with the outputs the request wants as binary data after the JSON
    header; and the header's length for `Inference-Header-Content-Length` (None: all JSON).
    """
    doc, blobs = _response(outputs, model_name, model_version, request, parameters, binary=True)
    head = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


def _response(
    outputs: dict[str, Array],
    model_name: str,
    model_version: str | None,
    request: InferRequest | None,
    parameters: dict[str, Any] | None,
    *,
    binary: bool,
) -> tuple[dict[str, Any], list[bytes]]:
    wanted = request.outputs if request is not None else None
    names = list(outputs) if wanted is None else list(wanted)
    tensors = []
    blobs: list[bytes] = []
    for name in names:
        if name not in outputs:
            raise RuntimeError(f"the runtime produced no output {name!r}")
        if binary and request is not None and request.is_binary(name):
            arr = np.asarray(outputs[name])
            datatype = datatype_of(arr.dtype)
            raw = binary_encode(arr, datatype)
            blobs.append(raw)
            tensors.append(
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": list(arr.shape),
                    "parameters": {"binary_data_size": len(raw)},
                }
            )
        else:
            tensors.append(encode_tensor(name, outputs[name]))
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        doc["model_version"] = model_version
    if request is not None and request.id is not None:
        doc["id"] = request.id
    if parameters:
        doc["parameters"] = parameters
    doc["outputs"] = tensors
    return doc, blobs


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
