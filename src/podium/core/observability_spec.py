"""The `observability:` block of an endpoint's spec (issue 12): payload capture for the
request records. Re-exported by `core.spec`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_CAPTURE_BYTES = 65536
MAX_REDACT_KEYS = 64


class CaptureSpec(BaseModel):
    """Store a sample of request and response bodies with their records.

    `sample` is the fraction of requests captured (0 to 1), `max_bytes` how much of each
    body is kept (the rest cut), `redact` the JSON keys whose values are replaced by
    `"***"` at any depth before storing (case-insensitive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample: float = Field(ge=0, le=1, description="fraction of requests captured")
    max_bytes: int = Field(4096, ge=1, le=MAX_CAPTURE_BYTES, description="per body")
    redact: tuple[str, ...] = Field(
        (), max_length=MAX_REDACT_KEYS, description="JSON keys whose values are not stored"
    )

    @field_validator("redact")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for key in v:
            if not key or len(key) > 128:
                raise ValueError("a redacted key has 1 to 128 characters")
        return tuple(k.lower() for k in v)


class ObservabilitySpec(BaseModel):
    """What Podium keeps about an endpoint's requests beyond their records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capture: CaptureSpec | None = Field(None, description="payload capture; off when absent")
