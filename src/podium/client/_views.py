"""What the access-control routes answer, as the SDK reads it (docs/security.md).

Lenient on purpose: a field the server adds later is kept (`extra="allow"`), never an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="allow")


class RateLimitView(_View):
    rps: float
    burst: int


class WhoAmI(_View):
    """The caller's token: `scopes` as granted (implied ones included); `projects` None
    means every project."""

    id: str
    name: str
    scopes: list[str]
    projects: list[str] | None = None
    expires_at: datetime | None = None


class TokenView(_View):
    """A token without its secret (as lists show it)."""

    id: str
    name: str
    scopes: list[str]
    projects: list[str] | None = None
    creator: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    rate_limit: RateLimitView | None = None


class TokenList(_View):
    items: list[TokenView]


class CreatedToken(TokenView):
    """A token just created: `token` is shown this once and never again."""

    token: str


class Quotas(_View):
    max_endpoints: int | None = None
    max_replicas: int | None = None
    max_cpus: float | None = None
    max_gpus: int | None = None
    max_memory_mb: int | None = None


class ProjectUsage(_View):
    endpoints: int = 0
    replicas: int = 0
    cpus: float = 0
    gpus: int = 0
    memory_mb: int = 0


class ProjectView(_View):
    name: str
    description: str | None = None
    quotas: Quotas = Quotas()
    usage: ProjectUsage = ProjectUsage()
    created_at: datetime | None = None


class SecretView(_View):
    """A secret's name and dates; its value is never answered."""

    project: str
    name: str
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class AuditEntry(_View):
    id: int
    at: datetime
    actor: str | None = None
    actor_name: str | None = None
    action: str
    object_kind: str | None = None
    object_name: str | None = None
    project: str | None = None
    before: Any = None
    after: Any = None
    address: str | None = None
    result: str | int | None = None
    detail: str | None = None


class AuditList(_View):
    entries: list[AuditEntry]


class UsageRow(_View):
    project: str
    endpoint: str | None = None
    day: str | None = None
    instance_type: str | None = None
    cpus: float | None = None  # `custom` (resources): one replica's size, which is priced
    memory_mb: int | None = None
    gpus: int | None = None
    replica_seconds: float
    cost: float | None = None


class UsageReport(_View):
    """Replica-seconds and cost per row; `start`/`end` are the API's `from`/`to`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    start: datetime | None = Field(None, alias="from")
    end: datetime | None = Field(None, alias="to")
    group_by: str
    currency: str = "USD"
    rows: list[UsageRow]
    total_replica_seconds: float
    total_cost: float | None = None
