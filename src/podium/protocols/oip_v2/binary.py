"""The binary tensor data extension (Triton's, used by `tritonclient` by default).

A request or response body is a JSON header followed by raw tensor bytes; the header's
length travels in the `Inference-Header-Content-Length` HTTP header, and each binary
tensor says how many bytes it takes with `parameters.binary_data_size`, in order.
Numbers are little-endian, BOOL one byte per element, and each BYTES element is a 4-byte
little-endian length followed by its bytes.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from podium.core.errors import Invalid
from podium.core.tensors import DTYPES, Array

HEADER = "inference-header-content-length"
EXTENSION = "binary_tensor_data"


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary part) of a request; the whole body is JSON without the header."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 <= n <= len(body):
        raise Invalid(
            f"Inference-Header-Content-Length {header_length!r} must be a length within the "
            f"body's {len(body)} bytes",
            field="body",
        )
    return body[:n], body[n:]


def decode(raw: bytes, datatype: str, shape: list[int], name: str, where: str) -> Array:
    """One tensor's bytes as an array of `shape`."""
    count = math.prod(shape)
    if datatype == "BYTES":
        items = _bytes_elements(raw, name, where)
        if len(items) != count:
            raise Invalid(
                f"input {name!r}: shape {shape} needs {count} elements, binary data has "
                f"{len(items)}",
                field=where,
            )
        out = np.empty(count, dtype=object)
        out[:] = [b.decode("utf-8", "replace") for b in items]
        return out.reshape(shape)
    dtype = DTYPES[datatype].newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise Invalid(
            f"input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} bytes, "
            f"binary data has {len(raw)}",
            field=where,
        )
    arr = np.frombuffer(raw, dtype=dtype).astype(DTYPES[datatype])
    return arr.reshape(shape)


def _bytes_elements(raw: bytes, name: str, where: str) -> list[bytes]:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise Invalid(f"input {name!r}: truncated BYTES element length", field=where)
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise Invalid(f"input {name!r}: a BYTES element runs past the data", field=where)
        items.append(raw[offset : offset + size])
        offset += size
    return items


def encode(arr: Array, datatype: str) -> bytes:
    """An output array's bytes (row-major)."""
    if datatype == "BYTES":
        parts: list[bytes] = []
        for x in np.asarray(arr).ravel().tolist():
            b = x if isinstance(x, bytes) else str(x).encode("utf-8")
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    dtype = DTYPES[datatype].newbyteorder("<")
    return np.ascontiguousarray(arr, dtype=dtype).tobytes()
