"""Store records → the public schemas of `core.schemas`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from podium.api.services import stats
from podium.core.access import DEFAULT_PROJECT, endpoint_key, split_key
from podium.core.errors import Invalid, NotFound
from podium.core.phases import EventKind, ReplicaState
from podium.core.schemas import (
    EndpointPublic,
    EventPublic,
    ModelPublic,
    ModelVersionPublic,
    ReplicaPublic,
    RevisionPublic,
)
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec, InstanceType
from podium.store import UnitOfWork
from podium.store.records import (
    EndpointRecord,
    EventRecord,
    ModelVersionRecord,
    ReplicaRecord,
    RevisionRecord,
)
from podium.store.stats import Key, Traffic


def model_version(uow: UnitOfWork, rec: ModelVersionRecord) -> ModelVersionPublic:
    return ModelVersionPublic(
        name=rec.bare_name,
        version=rec.version,
        ref=rec.bare_ref,
        project=rec.project,
        framework=rec.framework,
        sha256=rec.sha256,
        size_bytes=rec.size_bytes,
        files=rec.files,
        source=rec.source,
        created_at=rec.created_at,
        # stored refs are keys: only endpoints of the model's own project can use it
        used_by=[split_key(k)[1] for k in uow.endpoints.endpoints_using(rec.name, rec.version)],
    )


def model(uow: UnitOfWork, key: str) -> ModelPublic:
    """The model with this key (`core.access.endpoint_key`), every version."""
    versions = [model_version(uow, v) for v in uow.models.versions(key)]
    project, name = split_key(key)
    return ModelPublic(
        name=name,
        project=project,
        key=key,
        latest=max(v.version for v in versions),
        versions=versions,
    )


def replica(
    rec: ReplicaRecord,
    started: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
) -> ReplicaPublic:
    """`started`: the data of the replica's `replica_ready` event, if it has one;
    `figures`: what it served (`stats.replica_figures`), for the list and the detail."""
    start = started or {}
    return ReplicaPublic(
        replica_id=rec.replica_id,
        revision=rec.revision,
        state=rec.state,
        pid=rec.pid,
        host=rec.host,
        port=rec.port,
        started_at=rec.started_at,
        restarts=rec.restarts,
        start_mode=start.get("start_mode"),
        ready_s=start.get("ready_s"),
        start_phases=start.get("phases") or {},
        **(figures or {}),
    )


def endpoint(
    uow: UnitOfWork,
    settings: Settings,
    rec: EndpointRecord,
    traffic: Mapping[Key, Traffic] | None = None,
    replicas: Sequence[ReplicaRecord] | None = None,
    now: float | None = None,
) -> EndpointPublic:
    """The endpoint's view; with `traffic` (`uow.stats.traffic`), with what it and its
    replicas served and their uptimes (`endpoints`, `endpoint_with_stats`) at `now` (unix
    s; the store's clock when None). `replicas`: its replica rows when the caller read
    them already (a list reads them all at once)."""
    records = uow.replicas.list(endpoint=rec.name) if replicas is None else replicas
    ready: dict[str, EventRecord] = {}
    if records:  # the newest ready events cover every live replica but rare restarts
        for e in uow.events.newest(rec.name, EventKind.REPLICA_READY, 4 * len(records)):
            ready.setdefault(str(e.data.get("replica_id")), e)
    size = _size(settings, rec.spec)
    figures: dict[str, Any] = {}
    if traffic is None:
        views = [replica(r, _started(ready, r)) for r in records]
    else:  # each view is built once, with its figures (a copy after: 3 ms a 1,000)
        at = uow.stats.now() if now is None else now
        instance_of = _instance_types(uow, settings, rec, size)
        starts = [stats.ready_at(r, _ready_time(ready, r)) for r in records]
        views = [
            replica(
                r,
                _started(ready, r),
                stats.replica_figures(
                    traffic.get((rec.name, r.replica_id)), since, instance_of(r.revision), at
                ),
            )
            for r, since in zip(records, starts, strict=True)
        ]
        figures = stats.endpoint_figures(rec.name, starts, traffic, at)
    # Built without validation: every value comes from a record the store validated, and
    # validating the spec again ran its size check (a JSON dump of the spec) for every
    # endpoint of a list, a fifth of GET /endpoints at 1,000 endpoints (bench/scale.py).
    return EndpointPublic.model_construct(
        name=rec.bare_name,
        project=rec.project,
        key=rec.name,
        visibility=rec.spec.visibility,
        spec=rec.spec,
        status=rec.status,
        status_reason=rec.status_reason,
        revision=rec.revision,
        model_ref=bare_ref(rec.project, rec.model_ref),
        desired_replicas=rec.desired_replicas,
        ready_replicas=sum(1 for r in views if r.state == ReplicaState.READY),
        replicas=views,
        size=size,
        url=settings.public_url + endpoint_path(rec.project, rec.bare_name),
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        **figures,
    )


def _started(ready: Mapping[str, EventRecord], rec: ReplicaRecord) -> Mapping[str, Any] | None:
    event = ready.get(rec.replica_id)
    return None if event is None else event.data


def _ready_time(ready: Mapping[str, EventRecord], rec: ReplicaRecord) -> datetime | None:
    event = ready.get(rec.replica_id)
    return None if event is None else event.at


def endpoints(
    uow: UnitOfWork, settings: Settings, recs: Sequence[EndpointRecord]
) -> list[EndpointPublic]:
    """Views with their figures; the figures of every endpoint come from one query, and so
    do their replica rows (one query per endpoint cost 1 ms each: 200 endpoints, 200 ms)."""
    traffic = stats.traffic(uow, settings, [r.name for r in recs])  # f1: the sampled resolution
    now = uow.stats.now()  # one instant for the whole list
    if len(recs) == 1:
        return [endpoint(uow, settings, recs[0], traffic, now=now)]
    by_endpoint: dict[str, list[ReplicaRecord]] = {}
    for row in uow.replicas.list():  # ordered by endpoint and id, as one endpoint's are
        by_endpoint.setdefault(row.endpoint, []).append(row)
    return [endpoint(uow, settings, r, traffic, by_endpoint.get(r.name, []), now) for r in recs]


def endpoints_json(uow: UnitOfWork, settings: Settings, recs: Sequence[EndpointRecord]) -> bytes:
    """`EndpointList` of `endpoints(...)` as JSON, byte for byte what `model_dump_json`
    writes, but each spec's JSON (most of the answer) comes from the store's cache
    (`EndpointRepo.spec_json`: dumped once per stored spec) and is spliced into the view
    dumped without it (1,000 endpoints: 1.7 MB, of which the specs are two thirds)."""
    items = endpoints(uow, settings, recs)
    parts = [
        _with_spec(view, uow.endpoints.spec_json(rec))
        for view, rec in zip(items, recs, strict=True)
    ]
    return b'{"items":[' + b",".join(parts) + b"]}"


_NO_SPEC = {"spec"}
_AFTER_SPEC = b',"status":'  # the field that follows `spec` in `EndpointPublic`


def _with_spec(view: EndpointPublic, spec_json: bytes) -> bytes:
    """The view's JSON with `spec_json` in the place of its spec. The fields before the
    spec (name, project, key, visibility) are strings, whose JSON cannot hold `,"` (a
    quote in a string is escaped), so the first `,"status":` is the view's own."""
    doc = EndpointPublic.__pydantic_serializer__.to_json(view, exclude=_NO_SPEC)
    at = doc.index(_AFTER_SPEC) + 1
    return b"".join((doc[:at], b'"spec":', spec_json, b",", doc[at:]))


def endpoint_with_stats(uow: UnitOfWork, settings: Settings, rec: EndpointRecord) -> EndpointPublic:
    return endpoints(uow, settings, [rec])[0]


def _size(settings: Settings, spec: EndpointSpec) -> InstanceType | None:
    """One replica's size (`Settings.replica_size`); None for a type no longer known."""
    try:
        return settings.replica_size(spec)
    except Invalid:
        return None


def _instance_types(
    uow: UnitOfWork, settings: Settings, rec: EndpointRecord, size: InstanceType | None
) -> Callable[[int], InstanceType | None]:
    """revision → its instance type (`size`: the current revision's; the store is read
    only for a replica of an older revision, during a rollout); None for one these
    settings do not know any more."""
    cache: dict[int, InstanceType | None] = {rec.revision: size}

    def instance_of(number: int) -> InstanceType | None:
        if number not in cache:
            spec = rec.spec
            if number != rec.revision:
                try:
                    spec = uow.endpoints.revision(rec.name, number).spec
                except NotFound:
                    cache[number] = None
                    return None
            cache[number] = _size(settings, spec)
        return cache[number]

    return instance_of


def endpoint_path(project: str, name: str) -> str:
    """Where the gateway serves the endpoint: `/endpoints/{name}` in the default project,
    `/p/{project}/endpoints/{name}` in any other."""
    if project == DEFAULT_PROJECT:
        return f"/endpoints/{name}"
    return f"/p/{project}/endpoints/{name}"


def bare_ref(project: str, model_ref: str) -> str:
    """A stored model ref as users of the project write it: `team.iris:3` → `iris:3`."""
    prefix = endpoint_key(project, "")
    return model_ref.removeprefix(prefix) if project != DEFAULT_PROJECT else model_ref


def revision(rec: RevisionRecord) -> RevisionPublic:
    project = split_key(rec.endpoint)[0]
    return RevisionPublic(
        number=rec.number,
        model_ref=bare_ref(project, rec.model_ref),
        spec=rec.spec.model_dump(mode="json"),
        created_at=rec.created_at,
    )


def event(rec: EventRecord) -> EventPublic:
    return EventPublic(
        id=rec.id,
        endpoint=rec.endpoint,
        at=rec.at,
        kind=rec.kind,
        message=rec.message,
        data=rec.data,
    )
