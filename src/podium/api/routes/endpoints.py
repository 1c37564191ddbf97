"""Endpoints: create, list, inspect, update, scale, pause, resume, wake, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from podium.api.access import From, needs
from podium.api.deps import EndpointsDep, SettingsDep, UowDep
from podium.api.problems import responses
from podium.api.services import views
from podium.core.access import Scope
from podium.core.errors import Invalid
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.phases import EndpointStatus
from podium.core.schemas import EndpointList, EndpointPublic
from podium.core.spec import EndpointCreate, EndpointUpdate, ScaleRequest

router = APIRouter(prefix="/endpoints", tags=["endpoints"], responses=responses(401, 403, 422))
READ = needs(Scope.READ)
DEPLOY = needs(Scope.DEPLOY)

EndpointName = Annotated[  # the pattern is documented; a name that cannot exist is a 404
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]


@router.post(
    "",
    status_code=201,
    response_model=EndpointPublic,
    responses=responses(404, 409),
    dependencies=[needs(Scope.DEPLOY, From.BODY)],
)
def create_endpoint(spec: EndpointCreate, service: EndpointsDep) -> EndpointPublic:
    """Create an endpoint; the controller starts its replicas."""
    return service.create(spec)


@router.get("", response_model=EndpointList, dependencies=[needs(Scope.READ, From.ANY)])
def list_endpoints(
    uow: UowDep,
    settings: SettingsDep,
    status: EndpointStatus | None = None,
    label: Annotated[
        list[str] | None,
        Query(
            description="KEY=VALUE; repeat it to require several labels (all must match)",
            max_length=32,
        ),
    ] = None,
    name: Annotated[str | None, Query(description="part of the name", max_length=48)] = None,
) -> EndpointList:
    labels = dict(_label(value) for value in label or ())
    records = uow.endpoints.list(status=status, labels=labels, name_contains=name)
    return EndpointList(items=[views.endpoint(uow, settings, r) for r in records])


@router.get("/{name}", response_model=EndpointPublic, responses=responses(404), dependencies=[READ])
def get_endpoint(name: EndpointName, uow: UowDep, settings: SettingsDep) -> EndpointPublic:
    return views.endpoint(uow, settings, uow.endpoints.get(name))


@router.patch(
    "/{name}",
    response_model=EndpointPublic,
    responses=responses(404, 409),
    dependencies=[DEPLOY],
)
def update_endpoint(
    name: EndpointName, update: EndpointUpdate, service: EndpointsDep
) -> EndpointPublic:
    """Change part of the spec; a change that needs new replicas makes a new revision,
    which the controller rolls out."""
    return service.update(name, update)


@router.post(
    "/{name}/scale",
    response_model=EndpointPublic,
    responses=responses(404, 409),
    dependencies=[DEPLOY],
)
def scale_endpoint(
    name: EndpointName, bounds: ScaleRequest, service: EndpointsDep
) -> EndpointPublic:
    return service.scale(name, bounds)


@router.post(
    "/{name}/pause",
    response_model=EndpointPublic,
    responses=responses(404, 409),
    dependencies=[DEPLOY],
)
def pause_endpoint(name: EndpointName, service: EndpointsDep) -> EndpointPublic:
    return service.pause(name)


@router.post(
    "/{name}/resume",
    response_model=EndpointPublic,
    responses=responses(404, 409),
    dependencies=[DEPLOY],
)
def resume_endpoint(name: EndpointName, service: EndpointsDep) -> EndpointPublic:
    return service.resume(name)


@router.post(
    "/{name}/wake",
    response_model=EndpointPublic,
    responses=responses(404, 409),
    dependencies=[DEPLOY],
)
def wake_endpoint(name: EndpointName, service: EndpointsDep) -> EndpointPublic:
    """Start an endpoint ahead of traffic (e.g. a scaled-to-zero one): at least one replica,
    or `min_replicas`. 409 for a paused endpoint (resume it first), a failed or a deleting one.
    """
    return service.wake(name)


@router.delete(
    "/{name}",
    status_code=202,
    response_model=EndpointPublic,
    responses=responses(404, 409),
    dependencies=[DEPLOY],
)
def delete_endpoint(name: EndpointName, service: EndpointsDep) -> EndpointPublic:
    """Mark the endpoint deleting; the controller stops its replicas, then removes it."""
    return service.delete(name)


def _label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise Invalid(f"{value!r} is not a label filter: use KEY=VALUE", field="label")
    return key, val
