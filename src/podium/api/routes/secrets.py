"""Secrets of a project: list (names only), set (create or replace), delete.

A value is encrypted before it is stored (`store.secret_box`) and is never part of any
answer, error included. Listing needs `read` on the project; setting and deleting `deploy`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from podium.api.access import From, needs, readable
from podium.api.deps import CallerDep, CtxDep, UowDep
from podium.api.problems import responses
from podium.core.access import DEFAULT_PROJECT, Scope
from podium.core.ids import NAME_RE, NAME_RULE, PROJECT_RULE, check_name
from podium.core.secret_limits import SecretValueStr
from podium.store.secret_box import SecretBox
from podium.store.secrets import SecretRecord

router = APIRouter(prefix="/secrets", tags=["secrets"], responses=responses(401, 403, 422))

SecretName = Annotated[
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]
ProjectQuery = Annotated[str, Query(description=PROJECT_RULE, max_length=15)]


class SecretValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: SecretValueStr = Field(
        description="the secret (at most 64 KiB, UTF-8); never shown again"
    )


class SecretView(BaseModel):
    project: str
    name: str
    created_by: str
    created_at: datetime
    updated_at: datetime


def _view(rec: SecretRecord) -> SecretView:
    return SecretView(
        project=rec.project,
        name=rec.name,
        created_by=rec.created_by,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
    )


@router.get("", response_model=list[SecretView], dependencies=[needs(Scope.READ, From.ANY)])
def list_secrets(
    caller: CallerDep,
    uow: UowDep,
    project: Annotated[str | None, Query(description=PROJECT_RULE, max_length=15)] = None,
) -> list[SecretView]:
    """The secrets of `project` (default: every project the caller may read), without
    their values."""
    projects = readable(caller) if project is None else frozenset({project})
    return [_view(r) for r in uow.secrets.list(None if projects is None else sorted(projects))]


@router.put(
    "/{name}",
    response_model=SecretView,
    responses=responses(503),
    dependencies=[needs(Scope.DEPLOY)],
)
def put_secret(
    name: SecretName,
    body: SecretValue,
    caller: CallerDep,
    ctx: CtxDep,
    project: ProjectQuery = DEFAULT_PROJECT,
) -> SecretView:
    """Create the secret or replace its value."""
    check_name(name)
    box = SecretBox(ctx.settings.secret_key_path)
    with ctx.db.unit_of_work() as uow:
        ciphertext = box.encrypt(body.value, may_create=not uow.secrets.any())
        rec = uow.secrets.put(project, name, ciphertext, by=caller.token_id)
    return _view(rec)


@router.delete(
    "/{name}", status_code=204, responses=responses(404), dependencies=[needs(Scope.DEPLOY)]
)
def delete_secret(
    name: SecretName, ctx: CtxDep, project: ProjectQuery = DEFAULT_PROJECT
) -> Response:
    with ctx.db.unit_of_work() as uow:
        uow.secrets.delete(project, name)
    return Response(status_code=204)
