"""Tokens, callers and audit entries as the API shows them (never a secret: the token
string appears only in `TokenCreated`, the answer to its creation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from podium.core.access import Principal, RateLimit, Scope, granted
from podium.store.audit import AuditRecord
from podium.store.tokens import TokenRecord


class RateLimitPublic(BaseModel):
    rps: float
    burst: int


class TokenPublic(BaseModel):
    id: str
    name: str
    scopes: list[Scope]  # as given; `whoami` shows the granted ones
    projects: list[str] | None  # None: every project
    creator: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rate_limit: RateLimitPublic | None


class TokenCreated(TokenPublic):
    token: str  # shown once: only its hash is kept


class WhoAmI(BaseModel):
    id: str
    name: str
    scopes: list[Scope]  # granted: implied scopes included
    projects: list[str] | None
    expires_at: datetime | None


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_name: str
    action: str
    object_kind: str
    object_name: str | None
    project: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    address: str | None
    result: int
    detail: str | None


class AuditList(BaseModel):
    entries: list[AuditEntry]


def _limit(limit: RateLimit | None) -> RateLimitPublic | None:
    return None if limit is None else RateLimitPublic(rps=limit.rps, burst=limit.burst)


def token(rec: TokenRecord) -> TokenPublic:
    return TokenPublic(
        id=rec.id,
        name=rec.name,
        scopes=list(rec.scopes),
        projects=None if rec.projects is None else list(rec.projects),
        creator=rec.creator,
        created_at=rec.created_at,
        expires_at=rec.expires_at,
        revoked_at=rec.revoked_at,
        rate_limit=_limit(rec.rate_limit),
    )


def whoami(caller: Principal) -> WhoAmI:
    order = list(Scope)
    expires = caller.expires_at
    return WhoAmI(
        id=caller.token_id,
        name=caller.name,
        scopes=sorted(granted(caller.scopes), key=order.index),
        projects=None if caller.projects is None else sorted(caller.projects),
        expires_at=None if expires is None else datetime.fromtimestamp(expires, UTC),
    )


def audit_entry(rec: AuditRecord) -> AuditEntry:
    return AuditEntry(
        id=rec.id,
        at=rec.at,
        actor=rec.actor,
        actor_name=rec.actor_name,
        action=rec.action,
        object_kind=rec.object_kind,
        object_name=rec.object_name,
        project=rec.project,
        before=rec.before,
        after=rec.after,
        address=rec.address,
        result=rec.result,
        detail=rec.detail,
    )
