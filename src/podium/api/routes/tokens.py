"""API tokens (admin): create (the token is in that answer only), list, inspect, revoke.

After each commit the process's `TokenDirectory` is told at once, so a new token works
and a revoked one fails from the next request on (other processes reload within
`settings.token_refresh_s`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from podium.api.access import From, needs
from podium.api.deps import CallerDep, CtxDep, UowDep
from podium.api.problems import responses
from podium.api.services import access_views
from podium.api.services.access_views import TokenCreated, TokenPublic
from podium.core.access import (
    DEFAULT_PROJECT,
    Principal,
    RateLimit,
    Scope,
    TokenEntry,
    issue_token,
)
from podium.core.errors import Forbidden, Invalid, NotFound
from podium.core.ids import check_project
from podium.core.spec import RateLimitSpec
from podium.store import UnitOfWork
from podium.store.tokens import TokenRecord

router = APIRouter(
    prefix="/tokens",
    tags=["tokens"],
    responses=responses(401, 403, 422),
    dependencies=[needs(Scope.ADMIN, From.NONE)],
)

MAX_EXPIRES_S = 10 * 365 * 86400  # ten years
TokenId = Annotated[str, Path(description="12 hex digits", max_length=16)]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="printable, up to 64 characters")
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))
    projects: list[str] | None = Field(
        default_factory=lambda: [DEFAULT_PROJECT],
        max_length=256,
        description="the projects it acts on; null: every project (only an all-projects admin)",
    )
    expires_in_s: int | None = Field(
        None, ge=1, le=MAX_EXPIRES_S, description="lifetime in seconds; none: no expiry"
    )
    rate_limit: RateLimitSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.isprintable() or v.strip() != v:
            raise ValueError("use printable characters, no leading or trailing space")
        return v

    @field_validator("projects")
    @classmethod
    def _projects(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        if not v:
            raise ValueError("name at least one project, or null for every project")
        for i, project in enumerate(v):
            check_project(project, field=f"projects.{i}")
        return sorted(set(v))


@router.post("", status_code=201, response_model=TokenCreated, responses=responses(409))
def create_token(
    body: TokenCreate, caller: CallerDep, ctx: CtxDep, response: Response
) -> TokenCreated:
    """Make a token. Its string is in this answer only: the store keeps its hash."""
    response.headers["Cache-Control"] = "no-store"  # nor kept by any cache
    if not _within(caller, body.projects):
        outside = "every project" if body.projects is None else _outside(caller, body.projects)
        raise Forbidden(
            f"token {caller.name!r} ({caller.token_id}) lacks scope 'admin' on {outside}: "
            "a token may grant only projects its creator administers",
            field="projects",
        )
    issued = issue_token()
    with ctx.db.unit_of_work() as uow:
        for i, project in enumerate(body.projects or ()):
            try:
                uow.projects.require(project)
            except NotFound:
                raise Invalid(
                    f"project {project!r} does not exist", field=f"projects.{i}"
                ) from None
        expires_at = None
        if body.expires_in_s is not None:
            expires_at = datetime.now(UTC) + timedelta(seconds=body.expires_in_s)
        limit = body.rate_limit
        record = uow.tokens.create(
            issued,
            name=body.name,
            scopes=tuple(dict.fromkeys(body.scopes)),
            projects=None if body.projects is None else tuple(body.projects),
            creator=caller.token_id,
            expires_at=expires_at,
            rate_limit=None if limit is None else RateLimit(limit.rps, limit.burst),
        )
    if ctx.tokens is not None:
        ctx.tokens.put(TokenEntry(record.principal(), issued.secret_hash))
    return TokenCreated(**access_views.token(record).model_dump(), token=issued.token)


@router.get("", response_model=list[TokenPublic])
def list_tokens(
    uow: UowDep,
    caller: CallerDep,
    include_revoked: Annotated[bool, Query(description="revoked tokens too")] = False,
) -> list[TokenPublic]:
    """The tokens (an admin bound to projects sees those within its projects)."""
    records = uow.tokens.list(include_revoked=include_revoked)
    return [access_views.token(r) for r in records if _within(caller, r.projects)]


@router.get("/{id}", response_model=TokenPublic, responses=responses(404))
def get_token(id: TokenId, uow: UowDep, caller: CallerDep) -> TokenPublic:
    return access_views.token(_visible(uow, caller, id))


@router.delete(
    "/{id}",
    response_model=TokenPublic,
    responses=responses(404),
    openapi_extra={"x-podium-action": "token.revoke"},
)
def revoke_token(id: TokenId, ctx: CtxDep, caller: CallerDep) -> TokenPublic:
    """Revoke a token: it fails from the next request on. It keeps its row (the audit log
    names it); revoking it again changes nothing."""
    with ctx.db.unit_of_work() as uow:
        _visible(uow, caller, id)
        record = uow.tokens.revoke(id)
    if ctx.tokens is not None:
        ctx.tokens.drop(id)
    return access_views.token(record)


def _within(caller: Principal, projects: Sequence[str] | None) -> bool:
    """Whether every project of a token (`None`: all) is one `caller` administers."""
    if caller.projects is None:
        return True
    return projects is not None and set(projects) <= caller.projects


def _outside(caller: Principal, projects: Sequence[str]) -> str:
    held = caller.projects or frozenset()
    return f"project {sorted(set(projects) - held)[0]!r}"


def _visible(uow: UnitOfWork, caller: Principal, token_id: str) -> TokenRecord:
    """The token, if `caller` administers all its projects; else the same 404 as an
    unknown id (an admin of one project learns nothing of other projects' tokens)."""
    record = uow.tokens.get(token_id)
    if not _within(caller, record.projects):
        raise NotFound(f"token {token_id!r} not found", field="id")
    return record
