"""The blocks of an endpoint's spec that access control added (issue 11): its rate limit
and where its model's credentials come from. Re-exported by `core.spec`."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from podium.core.ids import NAME_RE, NAME_RULE


class RateLimitSpec(BaseModel):
    """A token bucket the gateway keeps: `rps` requests per second, bursts up to `burst`."""

    model_config = ConfigDict(extra="forbid")

    rps: float = Field(gt=0, le=1_000_000, description="requests per second, on average")
    burst: int = Field(ge=1, le=1_000_000, description="requests allowed at once")


class ModelSourceSpec(BaseModel):
    """How the model's files are fetched, each field naming a secret of the project:
    `token_secret` holds a Hugging Face token (gated or private `hf://` models);
    `access_key_secret` and `secret_key_secret` (both or neither) an S3 access key id and
    its secret key (`s3://` models; required unless the operator lends the server's own AWS
    keys, PODIUM_S3_SERVER_CREDENTIALS: `api.services.checks.check_s3_keys`)."""

    model_config = ConfigDict(extra="forbid")

    token_secret: str | None = Field(None, description="a secret's name in the project")
    access_key_secret: str | None = Field(
        None, description="a secret's name in the project: the S3 access key id"
    )
    secret_key_secret: str | None = Field(
        None, description="a secret's name in the project: the S3 secret access key"
    )

    @field_validator("token_secret", "access_key_secret", "secret_key_secret")
    @classmethod
    def _secret_name(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a valid secret name: use {NAME_RULE}")
        return v

    @model_validator(mode="after")
    def _key_pair(self) -> Self:
        if (self.access_key_secret is None) != (self.secret_key_secret is None):
            raise ValueError(
                "give both access_key_secret and secret_key_secret, or neither (the "
                "server's own AWS credentials, where the operator lends them)"
            )
        return self

    def secret_refs(self) -> dict[str, str]:
        """{`model_source.FIELD`: secret name} of the fields set."""
        fields = ("token_secret", "access_key_secret", "secret_key_secret")
        return {
            f"model_source.{name}": value
            for name in fields
            if (value := getattr(self, name)) is not None
        }
