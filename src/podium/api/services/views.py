"""Store records → the public schemas of `core.schemas`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from podium.store import UnitOfWork
from podium.store.records import (
    EndpointRecord,
    EventRecord,
    ModelVersionRecord,
    ReplicaRecord,
    RevisionRecord,
)


def model_version(uow: UnitOfWork, rec: ModelVersionRecord) -> ModelVersionPublic:
    return ModelVersionPublic(
        name=rec.name,
        version=rec.version,
        ref=rec.ref,
        framework=rec.framework,
        sha256=rec.sha256,
        size_bytes=rec.size_bytes,
        files=rec.files,
        source=rec.source,
        created_at=rec.created_at,
        used_by=uow.endpoints.endpoints_using(rec.name, rec.version),
    )


def model(uow: UnitOfWork, name: str) -> ModelPublic:
    versions = [model_version(uow, v) for v in uow.models.versions(name)]
    return ModelPublic(name=name, latest=max(v.version for v in versions), versions=versions)


def replica(rec: ReplicaRecord, started: Mapping[str, Any] | None = None) -> ReplicaPublic:
    """`started`: the data of the replica's `replica_ready` event, if it has one."""
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
    )


def endpoint(uow: UnitOfWork, settings: Settings, rec: EndpointRecord) -> EndpointPublic:
    records = uow.replicas.list(endpoint=rec.name)
    started: dict[str, Mapping[str, Any]] = {}
    if records:  # the newest ready events cover every live replica but rare restarts
        for e in uow.events.newest(rec.name, EventKind.REPLICA_READY, 4 * len(records)):
            started.setdefault(str(e.data.get("replica_id")), e.data)
    replicas = [replica(r, started.get(r.replica_id)) for r in records]
    return EndpointPublic(
        name=rec.name,
        spec=rec.spec,
        status=rec.status,
        status_reason=rec.status_reason,
        revision=rec.revision,
        model_ref=rec.model_ref,
        desired_replicas=rec.desired_replicas,
        ready_replicas=sum(1 for r in replicas if r.state == ReplicaState.READY),
        replicas=replicas,
        url=f"{settings.public_url}/endpoints/{rec.name}",
        created_at=rec.created_at,
        updated_at=rec.updated_at,
    )


def revision(rec: RevisionRecord) -> RevisionPublic:
    return RevisionPublic(
        number=rec.number,
        model_ref=rec.model_ref,
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
