"""`POST /apply` (converge to documents, or plan with `dry_run`) and the export of an
endpoint as the document apply accepts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from podium.api.access import From, needs
from podium.api.audit import AuditWriter, change_entry
from podium.api.deps import CallerDep, CtxDep, UowDep
from podium.api.problems import responses
from podium.api.routes.endpoints import EndpointName
from podium.api.routes.params import ProjectDep, key_of
from podium.api.services.apply import ApplyService, AuditSink, audit_action
from podium.core.access import Principal, Scope
from podium.core.apply_schemas import ApplyRequest, Change, Plan
from podium.core.errors import Invalid
from podium.core.manifest import export_document

router = APIRouter(tags=["apply"], responses=responses(401, 403, 422))


@router.post(
    "/apply",
    response_model=Plan,
    responses=responses(404, 409),
    dependencies=[needs(Scope.DEPLOY, From.ANY)],
)
def apply(
    request: Request,
    body: ApplyRequest,
    ctx: CtxDep,
    caller: CallerDep,
    dry_run: Annotated[bool, Query(description="plan only: change nothing")] = False,
    prune: Annotated[
        bool,
        Query(
            description="delete endpoints labelled with the same `managed-by` (required) in "
            "the projects the documents touch that no document names"
        ),
    ] = False,
    expect: Annotated[
        str | None,
        Query(
            max_length=64,
            description="the `fingerprint` of the plan the caller was shown: 409 if the plan "
            "differs now",
        ),
    ] = None,
) -> Plan:
    """Converge the server to `documents` (endpoints, secrets, projects) and answer the plan
    carried out; with `dry_run`, only the plan. Each document needs `deploy` in its project
    (a project document: admin on every project); the project is each document's own."""
    if "project" in request.query_params:
        raise Invalid("apply takes each document's `project`, not ?project=", field="project")
    sink = _audit_sink(request, caller)
    return ApplyService(ctx, caller, sink).apply(body, dry_run=dry_run, prune=prune, expect=expect)


def _audit_sink(request: Request, caller: Principal) -> AuditSink | None:
    """Writes one audit row per change the apply carries out (api/audit.py)."""
    writer = getattr(request.app.state, "audit", None)
    if not isinstance(writer, AuditWriter):
        return None
    address = request.client.host if request.client else None

    def record(change: Change, before: dict[str, Any] | None) -> None:
        after = {
            "action": change.action.value,
            "fields": [f.model_dump(mode="json") for f in change.fields],
        }
        writer.write(
            change_entry(
                caller,
                action=audit_action(change),
                project=change.project,
                name=change.name,
                before=before,
                after=after,
                address=address,
            )
        )

    return record


@router.get(
    "/endpoints/{name}/export",
    responses=responses(404),
    dependencies=[needs(Scope.READ)],
)
def export_endpoint(name: EndpointName, project: ProjectDep, uow: UowDep) -> dict[str, Any]:
    """The endpoint as an apply document: `kind: endpoint` and the fields that differ from
    the defaults (no server-made fields; the model as the user wrote it)."""
    return export_document(uow.endpoints.get(key_of(project, name)).spec)
