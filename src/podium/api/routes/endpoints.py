"""Endpoints: create, list, inspect, update, scale, pause, resume, wake, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from podium.api.access import From, needs, readable
from podium.api.deps import CallerDep, EndpointsDep, SettingsDep, UowDep
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep, SomeProjectDep, key_of
from podium.api.services import views
from podium.core.access import Scope
from podium.core.errors import Invalid
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.phases import EndpointStatus
from podium.core.schemas import EndpointList, EndpointPublic
from podium.core.spec import EndpointCreate, EndpointUpdate, ScaleRequest

router = APIRouter(prefix="/endpoints", tags=["endpoints"], responses=responses(422))

EndpointName = Annotated[  # the pattern is documented; a name that cannot exist is a 404
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]


@router.post(
    "",
    status_code=201,
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY, From.BODY)],
)
def create_endpoint(spec: EndpointCreate, service: EndpointsDep) -> EndpointPublic:
    """Create an endpoint in `spec.project` (needs `deploy` there); the controller starts
    its replicas. 409 `Quota exceeded` when it would pass one of the project's quotas."""
    return service.create(spec)


@router.get("", response_model=EndpointList, dependencies=[needs(Scope.READ, From.ANY)])
def list_endpoints(
    uow: UowDep,
    settings: SettingsDep,
    caller: CallerDep,
    project: SomeProjectDep,
    status: EndpointStatus | None = None,
    label: Annotated[
        list[str] | None,
        Query(
            description="KEY=VALUE; repeat it to require several labels (all must match)",
            max_length=32,
        ),
    ] = None,
    name: Annotated[str | None, Query(description="part of the name", max_length=48)] = None,
) -> Response:
    """Endpoints of `project`, or of every project the token may read."""
    labels = dict(_label(value) for value in label or ())
    projects = readable(caller)
    if project is not None:
        projects = frozenset({project})
    records = uow.endpoints.list(
        status=status, labels=labels, name_contains=name, projects=projects
    )
    # Serialized here, in the route's worker thread, not by FastAPI on the event loop:
    # 1,000 endpoints are 1.7 MB of JSON (~10 ms the gateway would wait). The views were
    # built from validated records, so the list is not validated again either; each
    # spec's JSON is dumped once per stored spec (`views.endpoints_json`).
    body = views.endpoints_json(uow, settings, records)  # + stats, one query
    return Response(body, media_type="application/json")


@router.get(
    "/{name}",
    response_model=EndpointPublic,
    responses=responses(403, 404),
    dependencies=[needs(Scope.READ)],
)
def get_endpoint(
    name: EndpointName, project: ProjectDep, uow: UowDep, settings: SettingsDep
) -> EndpointPublic:
    return views.endpoint_with_stats(uow, settings, uow.endpoints.get(key_of(project, name)))


@router.patch(
    "/{name}",
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def update_endpoint(
    name: EndpointName,
    update: EndpointUpdate,
    project: ProjectDep,
    service: EndpointsDep,
) -> EndpointPublic:
    """Change part of the spec; a change that needs new replicas makes a new revision,
    which the controller rolls out."""
    return service.update(key_of(project, name), update)


@router.post(
    "/{name}/scale",
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def scale_endpoint(
    name: EndpointName,
    bounds: ScaleRequest,
    project: ProjectDep,
    service: EndpointsDep,
) -> EndpointPublic:
    return service.scale(key_of(project, name), bounds)


@router.post(
    "/{name}/pause",
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def pause_endpoint(
    name: EndpointName, project: ProjectDep, service: EndpointsDep
) -> EndpointPublic:
    return service.pause(key_of(project, name))


@router.post(
    "/{name}/resume",
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def resume_endpoint(
    name: EndpointName, project: ProjectDep, service: EndpointsDep
) -> EndpointPublic:
    return service.resume(key_of(project, name))


@router.post(
    "/{name}/wake",
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def wake_endpoint(name: EndpointName, project: ProjectDep, service: EndpointsDep) -> EndpointPublic:
    """Start an endpoint ahead of traffic (e.g. a scaled-to-zero one): at least one replica,
    or `min_replicas`. 409 for a paused endpoint (resume it first), a failed or a deleting one.
    """
    return service.wake(key_of(project, name))


@router.post(
    "/{name}/scale-to-zero",
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def scale_endpoint_to_zero(
    name: EndpointName, project: ProjectDep, service: EndpointsDep
) -> EndpointPublic:
    """Stop the endpoint's replicas now; the next request (or task) wakes it, unlike pause.
    409 for a paused, failed or deleting endpoint."""
    return service.scale_to_zero(key_of(project, name))


@router.delete(
    "/{name}",
    status_code=202,
    response_model=EndpointPublic,
    responses=responses(403, 404, 409),
    dependencies=[needs(Scope.DEPLOY)],
)
def delete_endpoint(
    name: EndpointName, project: ProjectDep, service: EndpointsDep
) -> EndpointPublic:
    """Mark the endpoint deleting; the controller stops its replicas, then removes it."""
    return service.delete(key_of(project, name))


def _label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise Invalid(f"{value!r} is not a label filter: use KEY=VALUE", field="label")
    return key, val
