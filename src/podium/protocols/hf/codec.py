"""Decode `{"inputs": …, "parameters": {…}, "options": {…}, "stream": …}` and encode answers.

`options` (the hosted API's `wait_for_model` / `use_cache`) is accepted and ignored, as
are other top-level keys, so existing clients keep working. `stream: true` asks for
server-sent events. The feature-extraction keys the Hugging Face clients send at the top
level (`normalize`, `truncate`, …) are moved into `parameters`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from podium.core.errors import Invalid
from podium.core.jsondepth import check_depth


@dataclass(frozen=True, slots=True)
class HfRequest:
    inputs: Any
    parameters: dict[str, Any] = field(default_factory=dict)
    stream: bool = False


# Sent at the top level by huggingface_hub's feature_extraction (the task's spec says so).
ROOT_PARAMETERS = ("normalize", "prompt_name", "truncate", "truncation_direction")


def decode_request(body: bytes) -> HfRequest:
    """Parse a request body; Invalid (field body/inputs/parameters) when malformed."""
    if not body.strip():
        raise Invalid('the body is empty; send {"inputs": ...}', field="body")
    check_depth(body)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Invalid(f"the body is not valid JSON: {e}", field="body") from None
    if not isinstance(doc, dict):
        raise Invalid('the body must be a JSON object: {"inputs": ...}', field="body")
    if "inputs" not in doc:
        raise Invalid('the body has no "inputs"', field="inputs")
    inputs = doc["inputs"]
    if inputs is None:
        raise Invalid('"inputs" must not be null', field="inputs")
    parameters = doc.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        raise Invalid('"parameters" must be a JSON object', field="parameters")
    for key in ROOT_PARAMETERS:
        if doc.get(key) is not None and key not in parameters:
            parameters = {**parameters, key: doc[key]}
    stream = doc.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise Invalid('"stream" must be true or false', field="stream")
    return HfRequest(inputs, parameters, bool(stream))


def sse(doc: Any) -> bytes:
    """One server-sent event carrying a JSON document."""
    return b"data: " + to_json_bytes(doc) + b"\n\n"


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON; numpy arrays and scalars become plain lists and numbers."""
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def encode_response(outputs: Any) -> bytes:
    """A runtime's answer as a response body. TypeError if it cannot be JSON."""
    return to_json_bytes(outputs)
