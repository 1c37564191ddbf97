"""The audit log (admin): every control action and refused attempt, oldest first (or
newest first with `order=desc`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from podium.api.access import From, needs
from podium.api.deps import CallerDep, UowDep
from podium.api.problems import responses
from podium.api.services import access_views
from podium.api.services.access_views import AuditList
from podium.core.access import Scope
from podium.store.audit import MAX_PAGE

router = APIRouter(
    tags=["audit"],
    responses=responses(401, 403, 422),
    dependencies=[needs(Scope.ADMIN, From.NONE)],
)


@router.get("/audit", response_model=AuditList)
def list_audit(
    uow: UowDep,
    caller: CallerDep,
    project: Annotated[str | None, Query(max_length=15)] = None,
    actor: Annotated[str | None, Query(max_length=64, description="token id or name")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="endpoint.create, or a kind: endpoint")
    ] = None,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="entries after this")] = 0,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="entries before this")
    ] = None,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="asc: the oldest first (default); desc: the newest first"),
    ] = "asc",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditList:
    """Entries oldest first, or newest first with `order=desc` (then page back with
    `before_id` set to the last id received). An admin bound to projects sees the
    entries of its projects only (not those of tokens, which belong to no project)."""
    records = uow.audit.list(
        project=project,
        projects=caller.projects,
        actor=actor,
        action=action,
        after_id=after_id,
        before_id=before_id,
        newest_first=order == "desc",
        limit=limit,
    )
    return AuditList(entries=[access_views.audit_entry(r) for r in records])
