"""Projects: list, create, inspect, change (description, quotas), delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from podium.api.access import From, needs
from podium.api.deps import CallerDep, CtxDep, UowDep
from podium.api.problems import responses
from podium.api.services import projects
from podium.core.access import Scope
from podium.core.ids import PROJECT_RE, PROJECT_RULE
from podium.core.schemas import ProjectCreate, ProjectPublic, ProjectUpdate

router = APIRouter(prefix="/projects", tags=["projects"], responses=responses(401, 403, 422))

ProjectName = Annotated[
    str, Path(description=PROJECT_RULE, json_schema_extra={"pattern": PROJECT_RE.pattern})
]


@router.get("", response_model=list[ProjectPublic], dependencies=[needs(Scope.READ, From.ANY)])
def list_projects(uow: UowDep, ctx: CtxDep, caller: CallerDep) -> list[ProjectPublic]:
    """The projects the token may read (its own; every one for a token bound to none), with
    their quotas and what they use of them."""
    return projects.views(uow, ctx.settings, caller.projects)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectPublic,
    responses=responses(409),
    dependencies=[needs(Scope.ADMIN, From.ALL)],
)
def create_project(body: ProjectCreate, ctx: CtxDep) -> ProjectPublic:
    """Create a project (an admin of every project)."""
    return projects.create(ctx.db, ctx.settings, body)


@router.get(
    "/{name}",
    response_model=ProjectPublic,
    responses=responses(404),
    dependencies=[needs(Scope.READ, From.PATH)],
)
def get_project(name: ProjectName, uow: UowDep, ctx: CtxDep) -> ProjectPublic:
    return projects.one(uow, ctx.settings, name)


@router.patch(
    "/{name}",
    response_model=ProjectPublic,
    responses=responses(404),
    dependencies=[needs(Scope.ADMIN, From.ALL)],
)
def update_project(name: ProjectName, body: ProjectUpdate, ctx: CtxDep) -> ProjectPublic:
    """Change the description or quotas (admin): a quota named in the body is set (null:
    unlimited), the others are kept. Needs an admin of every project: an admin bound to
    projects may not lift its own quotas. Lowering a quota below what is in use stops nothing;
    it refuses growth from then on."""
    return projects.update(ctx.db, ctx.settings, name, body)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(404, 409),
    dependencies=[needs(Scope.ADMIN, From.ALL)],
)
def delete_project(name: ProjectName, ctx: CtxDep) -> None:
    """Delete an empty project (an admin of every project): 409 while it holds endpoints,
    models or secrets, and always for `default`."""
    projects.delete(ctx.db, name)
