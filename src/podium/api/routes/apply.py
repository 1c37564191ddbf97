"""`POST /apply` (converge to documents, or plan with `dry_run`) and the export of an
endpoint as the document apply accepts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from podium.api.access import From, needs
from podium.api.deps import CallerDep, CtxDep, UowDep
from podium.api.problems import responses
from podium.api.routes.endpoints import EndpointName
from podium.api.routes.params import ProjectDep, key_of
from podium.api.services.apply import ApplyService
from podium.core.access import Scope
from podium.core.apply_schemas import ApplyRequest, Plan
from podium.core.manifest import export_document

router = APIRouter(tags=["apply"], responses=responses(401, 403, 422))


@router.post(
    "/apply",
    response_model=Plan,
    responses=responses(404, 409),
    dependencies=[needs(Scope.DEPLOY, From.ANY)],
)
def apply(
    body: ApplyRequest,
    ctx: CtxDep,
    caller: CallerDep,
    dry_run: Annotated[bool, Query(description="plan only: change nothing")] = False,
    prune: Annotated[
        bool,
        Query(
            description="delete endpoints labelled with the same `managed-by` in the projects "
            "the documents touch that no document names"
        ),
    ] = False,
) -> Plan:
    """Converge the server to `documents` (endpoints, secrets, projects) and answer the plan
    carried out; with `dry_run`, only the plan. Each document needs `deploy` in its project
    (a project document: admin on every project)."""
    return ApplyService(ctx, caller).apply(body, dry_run=dry_run, prune=prune)


@router.get(
    "/endpoints/{name}/export",
    responses=responses(404),
    dependencies=[needs(Scope.READ)],
)
def export_endpoint(name: EndpointName, project: ProjectDep, uow: UowDep) -> dict[str, Any]:
    """The endpoint as an apply document: `kind: endpoint` and the fields that differ from
    the defaults (no server-made fields; the model as the user wrote it)."""
    return export_document(uow.endpoints.get(key_of(project, name)).spec)
