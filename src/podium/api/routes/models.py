"""The model repository: push versions, list, inspect, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from podium.api.access import From, needs, readable
from podium.api.deps import CallerDep, CtxDep, ModelsDep, UowDep
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep, SomeProjectDep, key_of
from podium.api.services import views
from podium.api.services.model_files import SHA256_HEADER, pack_version
from podium.api.services.uploads import FILENAME_RE
from podium.core.access import Scope
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.schemas import ModelPublic, ModelVersionPublic, ModelVersionPushed

router = APIRouter(prefix="/models", tags=["models"], responses=responses(403, 422))

# Patterns are documented, not enforced by FastAPI: the services check them with a
# human message (and a lookup of a name that cannot exist is simply a 404).
ModelName = Annotated[
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "the model: one file, or a .zip / .tar / .tar.gz / .tgz archive",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelVersionPushed,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {
            "model": ModelVersionPushed,
            "description": "the latest version has these bytes (`created: false`)",
        },
        **responses(413, 503),
    },
    dependencies=[needs(Scope.DEPLOY)],
)
async def push_version(
    name: ModelName,
    project: ProjectDep,
    request: Request,
    response: Response,
    ctx: CtxDep,
    service: ModelsDep,
    filename: Annotated[
        str,
        Query(
            description="the model file's name, or the archive's: .zip .tar .tar.gz .tgz",
            json_schema_extra={"pattern": FILENAME_RE.pattern},
        ),
    ],
    framework: Annotated[
        str | None,
        Query(
            description="the runtime (sklearn, python, …); guessed from the files when absent",
            json_schema_extra={"pattern": r"^[a-z][a-z0-9_.-]{1,31}$"},
        ),
    ] = None,
) -> ModelVersionPublic:
    """Push a new version. The body is streamed to disk, unpacked safely and hashed; when
    the latest version holds the same bytes it is returned (200, `x-podium-duplicate`)."""
    pushed = await service.push_upload(
        name,
        request.stream(),
        project=project,
        filename=filename,
        framework=framework,
        content_length=request.headers.get("content-length"),
        limit=ctx.max_upload_bytes,
    )
    if pushed.duplicate:
        response.status_code = status.HTTP_200_OK
        response.headers["x-podium-duplicate"] = "true"
    return ModelVersionPushed(**pushed.version.model_dump(), created=not pushed.duplicate)


@router.get("", response_model=list[ModelPublic], dependencies=[needs(Scope.READ, From.ANY)])
def list_models(uow: UowDep, caller: CallerDep, project: SomeProjectDep) -> list[ModelPublic]:
    """Models of `project`, or of every project the token may read."""
    projects = readable(caller)
    if project is not None:
        projects = frozenset({project})
    return [views.model(uow, key) for key in uow.models.list_names(projects)]


@router.get(
    "/{name}",
    response_model=ModelPublic,
    responses=responses(404),
    dependencies=[needs(Scope.READ)],
)
def get_model(name: ModelName, project: ProjectDep, uow: UowDep) -> ModelPublic:
    return views.model(uow, key_of(project, name, "model"))


@router.get(
    "/{name}/versions/{version}",
    response_model=ModelVersionPublic,
    responses=responses(404),
    dependencies=[needs(Scope.READ)],
)
def get_version(
    name: ModelName, version: Version, project: ProjectDep, uow: UowDep
) -> ModelVersionPublic:
    return views.model_version(uow, uow.models.get(key_of(project, name, "model"), version))


@router.get(
    "/{name}/versions/{version}/files",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/x-tar": {}}, "description": "the version's files"},
        **responses(404),
    },
    dependencies=[needs(Scope.READ)],
)
def get_version_files(
    name: ModelName, version: Version, project: ProjectDep, uow: UowDep, ctx: CtxDep
) -> FileResponse:
    """The version's files as one uncompressed tar, and their sha256 (the version's digest)
    in `x-podium-sha256`: how a node of a remote backend (Ray) fetches a repository model
    into its own cache. The receiver checks the digest after unpacking."""
    rec = uow.models.get(key_of(project, name, "model"), version)
    packed = pack_version(ctx.artifacts.locate(rec.name, rec.version), ctx.settings.home / "tmp")
    return FileResponse(
        packed,
        media_type="application/x-tar",
        headers={SHA256_HEADER: rec.sha256},
        background=BackgroundTask(packed.unlink, missing_ok=True),
    )


@router.delete(
    "/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def delete_version(
    name: ModelName, version: Version, project: ProjectDep, service: ModelsDep
) -> None:
    """Delete one version and its files; refused while an endpoint serves it."""
    service.delete_version(key_of(project, name, "model"), version)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def delete_model(name: ModelName, project: ProjectDep, service: ModelsDep) -> None:
    """Delete every version of the model; refused while an endpoint serves any of them."""
    service.delete_model(key_of(project, name, "model"))
