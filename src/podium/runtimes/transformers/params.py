"""Checking request values: texts, parameters, and plain JSON-able answers.

Every helper raises `Invalid` naming the offending field (`inputs`, `parameters.top_k`),
so a client learns what to fix from a 400, never from a 500. No heavy imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.core.errors import Invalid

_MISSING = object()


def texts_of(inputs: Any) -> tuple[list[str], bool]:
    """`inputs` as a list of texts, and whether it was a single string."""
    if isinstance(inputs, str):
        return [inputs], True
    if isinstance(inputs, list) and inputs and all(isinstance(t, str) for t in inputs):
        return list(inputs), False
    raise invalid("inputs must be a string or a non-empty list of strings", "inputs")


def invalid(message: str, field: str) -> Invalid:
    return Invalid(message, field=field)


def get_int(
    parameters: Mapping[str, Any],
    name: str,
    default: int | None,
    *,
    minimum: int = 1,
) -> int | None:
    value = parameters.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(f"{name} must be an integer >= {minimum}", f"parameters.{name}")
    return value


def get_float(
    parameters: Mapping[str, Any],
    name: str,
    default: float | None,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
) -> float | None:
    value = parameters.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{name} must be a number", f"parameters.{name}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise invalid(f"{name} must be {bounds}", f"parameters.{name}")
    return float(value)


def get_bool(parameters: Mapping[str, Any], name: str, default: bool | None) -> bool | None:
    value = parameters.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false", f"parameters.{name}")
    return value


def get_choice(
    parameters: Mapping[str, Any], name: str, default: str | None, choices: tuple[str, ...]
) -> str | None:
    value = parameters.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if value not in choices:
        raise invalid(f"{name} must be one of {', '.join(choices)}", f"parameters.{name}")
    return str(value)


def get_strings(parameters: Mapping[str, Any], name: str) -> list[str] | None:
    """A list of strings; a single string is split on commas (the Hugging Face API's way)."""
    value = parameters.get(name, _MISSING)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise invalid(f"{name} must be a non-empty list of non-empty strings", f"parameters.{name}")
    return list(value)


def plain(value: Any) -> Any:
    """Numpy scalars and arrays inside lists and dicts as plain Python numbers and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__ == "numpy":
        return tolist()
    return value


def split(flat: list[Any], sizes: list[int], singles: list[bool]) -> list[Any]:
    """Undo the flattening of several requests' texts: one answer per request, a bare
    answer where the request's inputs was a single string."""
    out: list[Any] = []
    start = 0
    for size, single in zip(sizes, singles, strict=True):
        part = flat[start : start + size]
        out.append(part[0] if single else part)
        start += size
    return out
