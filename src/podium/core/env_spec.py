"""The `env:` block of an endpoint spec: what a replica gets in its environment.

Each entry is a plain string, or an object with flags (the Terraform resource's and the
hosted products' shape):

    env:
      LOG_LEVEL: debug
      API_KEY: {required: true}            # must get a value: here or from env_from_secrets
      DEBUG_DUMP: {value: "1", disabled: true}   # kept in the spec, not given to replicas

A `required` variable with no `value` and no `env_from_secrets` entry of the same name is a
422 naming `env.KEY` when the spec is saved; one whose secret is gone when a replica starts
fails the deploy naming the variable. A `disabled` entry is never passed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from podium.core.bounds import AtMost, is_stored

MAX_ENV = 256
MAX_ENV_VALUE_CHARS = 16 * 1024

_EnvKey = Annotated[str, AtMost(256)]
_EnvValue = Annotated[str, AtMost(MAX_ENV_VALUE_CHARS)]


class EnvVar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: _EnvValue | None = None
    required: bool = Field(False, description="the deploy fails naming it when it has no value")
    disabled: bool = Field(False, description="kept in the spec, not given to replicas")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.required and self.disabled:
            raise ValueError("a variable cannot be both required and disabled")
        if not self.required and not self.disabled and self.value is None:
            raise ValueError("give `value` (or mark the variable `required` or `disabled`)")
        return self


def _entry(value: object, info: ValidationInfo) -> str | EnvVar:
    """One entry, validated by hand rather than as a union: an error names `env.KEY` and says
    what is wrong, not which union member pydantic tried (its location would name both)."""
    if isinstance(value, EnvVar):
        return value
    if isinstance(value, str):
        if len(value) > MAX_ENV_VALUE_CHARS and not is_stored(info):
            raise ValueError(f"at most {MAX_ENV_VALUE_CHARS} characters allowed, not {len(value)}")
        _no_nul(value, info)
        return value
    if not isinstance(value, dict):
        raise ValueError("an env entry is a string or {value, required, disabled}")
    try:
        entry = EnvVar.model_validate(value, context=info.context)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{where}: {msg}" if where else msg) from None
    _no_nul(entry.value, info)
    return entry


def _no_nul(value: str | None, info: ValidationInfo) -> None:
    """No process environment can hold a NUL: a replica's start would fail on it (Popen
    refuses it), so the spec is refused when it is saved."""
    if value is not None and "\0" in value and not is_stored(info):
        raise ValueError("an environment value cannot hold a NUL character")


def _dump(entry: str | EnvVar) -> str | dict[str, object]:
    return entry if isinstance(entry, str) else entry.model_dump()


EnvEntry = Annotated[
    str | EnvVar,
    PlainValidator(_entry, json_schema_input_type=_EnvValue | EnvVar),
    PlainSerializer(_dump),
]
Env = Annotated[dict[_EnvKey, EnvEntry], AtMost(MAX_ENV)]


def env_values(env: Mapping[str, EnvEntry]) -> dict[str, str]:
    """What replicas get from `env`: every enabled entry that has a value."""
    out: dict[str, str] = {}
    for key, entry in env.items():
        if isinstance(entry, str):
            out[key] = entry
        elif not entry.disabled and entry.value is not None:
            out[key] = entry.value
    return out


def missing_required(env: Mapping[str, EnvEntry], from_secrets: Mapping[str, str]) -> list[str]:
    """Required variables that get no value: neither in `env` nor in `env_from_secrets`."""
    return [
        key
        for key, entry in env.items()
        if isinstance(entry, EnvVar)
        and entry.required
        and entry.value is None
        and key not in from_secrets
    ]
