"""What the control plane returns (pydantic). Shared by the API and the Python SDK."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.spec import EndpointSpec


class ModelVersionPublic(BaseModel):
    name: str
    version: int
    ref: str  # "iris:3"
    framework: str | None = None
    sha256: str
    size_bytes: int
    files: int
    source: str  # where it came from: "upload:iris.tar.gz", "path:/x", …
    created_at: datetime
    used_by: list[str] = Field(default_factory=list)  # endpoints whose revision uses it


class ModelVersionPushed(ModelVersionPublic):
    """The answer to a push: the version, and whether the push created it."""

    created: bool = True  # False: the latest version already held these bytes (HTTP 200)


class ModelPublic(BaseModel):
    name: str
    latest: int
    versions: list[ModelVersionPublic]


class ReplicaPublic(BaseModel):
    replica_id: str
    revision: int
    state: ReplicaState
    pid: int | None = None
    host: str
    port: int
    started_at: datetime | None = None
    restarts: int = 0
    # How it started (from its `replica_ready` event; None until it is ready): fork or
    # spawn, seconds from the decision to ready, and seconds per phase (waiting, fork or
    # spawn, import, load, listen, first_response).
    start_mode: str | None = None
    ready_s: float | None = None
    start_phases: dict[str, float] = Field(default_factory=dict)


class RevisionPublic(BaseModel):
    number: int
    model_ref: str  # resolved, e.g. "iris:3" or "hf://org/name@sha"
    spec: dict[str, Any]
    created_at: datetime


class EndpointPublic(BaseModel):
    name: str
    spec: EndpointSpec
    status: EndpointStatus
    status_reason: str | None = None
    revision: int
    model_ref: str
    desired_replicas: int
    ready_replicas: int
    replicas: list[ReplicaPublic] = Field(default_factory=list)
    url: str
    created_at: datetime
    updated_at: datetime


class EndpointList(BaseModel):
    items: list[EndpointPublic]


class EventPublic(BaseModel):
    id: int
    endpoint: str
    at: datetime
    kind: EventKind
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class EventList(BaseModel):
    items: list[EventPublic]


class LogLine(BaseModel):
    replica_id: str
    line: str


class LogReplica(BaseModel):
    replica_id: str
    state: str = Field(description="the replica's state while it runs; `exited` once it is gone")


class LogList(BaseModel):
    items: list[LogLine]
    replicas: list[LogReplica] = Field(
        default_factory=list,
        description="replicas with logs: exited ones whose log is kept (oldest first), then "
        "running ones",
    )
