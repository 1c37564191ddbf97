"""`AtMost(n)`: a length bound on what users send, which data read back from the store is
exempt from.

A bound added later must not make yesterday's stored specs unreadable (every list and the
controller read them): the store validates with `context=STORED`, and `AtMost` lets such
data through. User input is always checked. The bound is also written into the JSON schema
(maxLength / maxItems / maxProperties), so the OpenAPI document states it:

    labels: Annotated[dict[Annotated[str, AtMost(63)], str], AtMost(64)]
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

STORED: dict[str, Any] = {"stored": True}  # validation context for data from the store

_JSON_KEYS = {"string": "maxLength", "array": "maxItems", "object": "maxProperties"}
_UNITS = {"string": "characters", "array": "items", "object": "entries"}


def is_stored(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and bool(context.get("stored"))


@dataclass(frozen=True, slots=True)
class AtMost:
    limit: int

    def _check(self, value: Sized, info: ValidationInfo) -> Sized:
        if len(value) > self.limit and not is_stored(info):
            unit = "characters" if isinstance(value, str) else "items"
            if isinstance(value, dict):
                unit = "entries"
            raise ValueError(f"at most {self.limit} {unit} allowed, not {len(value)}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.with_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        value = handler(schema)
        key = _JSON_KEYS.get(value.get("type", ""))
        if key:
            value[key] = self.limit
        return value
