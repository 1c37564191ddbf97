"""Checks of generation parameters that the Hugging Face and OpenAI protocols share.

`field` is where the value sits in the request (`temperature`, `parameters.temperature`);
errors name it."""

from __future__ import annotations

import math
from typing import Any

from podium.core.errors import Invalid

MAX_STOP = 16  # stop sequences per request


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def bounded(value: Any, field: str, low: float, high: float) -> float:
    """`value` as a float, if it is a number from `low` to `high`."""
    if not is_number(value) or not low <= value <= high:
        raise Invalid(
            f"'{field}' must be a number from {low:g} to {high:g}; got {value!r}", field=field
        )
    return float(value)


def stop_sequences(value: Any, field: str) -> tuple[str, ...]:
    """None, a string or a list of up to MAX_STOP non-empty strings, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise Invalid(f"'{field}' must be a non-empty string or a list of them", field=field)
    if len(value) > MAX_STOP:
        raise Invalid(f"'{field}' takes at most {MAX_STOP} sequences", field=field)
    return tuple(value)
