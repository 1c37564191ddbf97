"""The blocks of an endpoint's spec that access control added (issue 11): its rate limit
and where its model's credentials come from. Re-exported by `core.spec`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from podium.core.ids import NAME_RE, NAME_RULE


class RateLimitSpec(BaseModel):
    """A token bucket the gateway keeps: `rps` requests per second, bursts up to `burst`."""

    model_config = ConfigDict(extra="forbid")

    rps: float = Field(gt=0, le=1_000_000, description="requests per second, on average")
    burst: int = Field(ge=1, le=1_000_000, description="requests allowed at once")


class ModelSourceSpec(BaseModel):
    """How the model's files are fetched: `token_secret` names the project's secret that
    holds a Hugging Face token (for gated or private `hf://` models)."""

    model_config = ConfigDict(extra="forbid")

    token_secret: str | None = Field(None, description="a secret's name in the project")

    @field_validator("token_secret")
    @classmethod
    def _secret_name(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a valid secret name: use {NAME_RULE}")
        return v
