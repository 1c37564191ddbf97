"""What the control plane returns (pydantic). Shared by the API and the Python SDK."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from podium.core.access import DEFAULT_PROJECT, Visibility
from podium.core.ids import PROJECT_RULE
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.spec import EndpointSpec, InstanceType


class ModelVersionPublic(BaseModel):
    name: str  # within its project
    version: int
    ref: str  # "iris:3", as an endpoint of the project names it
    project: str = DEFAULT_PROJECT
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
    name: str  # within its project
    latest: int
    project: str = DEFAULT_PROJECT
    key: str = ""  # `core.access.endpoint_key`: the name, or `project.name`
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
    # What it served (issue 12; from the metrics history's 10 s points: docs/observability.md).
    uptime_s: float | None = Field(
        None, description="seconds since it became ready; null: not ready"
    )
    requests: int | None = Field(None, description="requests it answered in the last 24 h")
    requests_per_min: float | None = Field(None, description="over the last 5 minutes")
    avg_latency_ms: float | None = Field(
        None, description="mean upstream time over the last 5 minutes; null: no request"
    )
    cpus: float | None = Field(None, description="CPUs of its revision's instance type")
    gpus: int | None = Field(None, description="GPUs of its revision's instance type")


class RevisionPublic(BaseModel):
    number: int
    model_ref: str  # resolved, e.g. "iris:3" or "hf://org/name@sha"
    spec: dict[str, Any]
    created_at: datetime


class EndpointPublic(BaseModel):
    name: str  # within its project
    project: str = DEFAULT_PROJECT
    key: str = ""  # `core.access.endpoint_key`: the name, or `project.name`
    visibility: Visibility = Visibility.PROTECTED
    spec: EndpointSpec
    status: EndpointStatus
    status_reason: str | None = None
    revision: int
    model_ref: str
    desired_replicas: int
    ready_replicas: int
    replicas: list[ReplicaPublic] = Field(default_factory=list)
    size: InstanceType | None = Field(
        None,
        description="one replica's size: its instance type, or `custom` (priced per unit) for "
        "`resources`; null: a type this server does not know",
    )
    url: str
    created_at: datetime
    updated_at: datetime
    # What it served (issue 12; from the metrics history's 10 s points: docs/observability.md).
    # Filled by GET /endpoints and GET /endpoints/{name}; null in the answers to changes.
    requests: int | None = Field(None, description="requests in the last 24 h")
    requests_per_min: float | None = Field(None, description="over the last 5 minutes")
    avg_latency_ms: float | None = Field(
        None, description="mean latency over the last 5 minutes; null: no request"
    )
    error_rate: float | None = Field(
        None, description="5xx answers / requests over the last 5 minutes; null: no request"
    )
    uptime_s: float | None = Field(
        None, description="seconds since the oldest replica serving now became ready; null: none"
    )


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


# ---------------------------------------------------------------- projects


class QuotasModel(BaseModel):
    """A project's quotas; null (or absent) is unlimited."""

    model_config = ConfigDict(extra="forbid")

    max_endpoints: int | None = Field(None, ge=0, le=1_000_000, description="endpoints not paused")
    max_replicas: int | None = Field(None, ge=0, le=1_000_000, description="desired replicas")
    max_cpus: float | None = Field(None, ge=0, le=1_000_000, description="replicas * cpus")
    max_gpus: int | None = Field(None, ge=0, le=1_000_000, description="replicas * gpus")
    max_memory_mb: int | None = Field(None, ge=0, le=2**40, description="replicas * memory (MiB)")


class UsagePublic(BaseModel):
    """What a project uses of its quotas now (see docs/security.md)."""

    endpoints: int
    replicas: int
    cpus: float
    gpus: int
    memory_mb: int = Field(description="replicas * memory (MiB)")


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=15, description=PROJECT_RULE)
    description: str | None = Field(None, max_length=1000)
    quotas: QuotasModel = Field(default_factory=QuotasModel)


class ProjectUpdate(BaseModel):
    """A partial change: a quota named here is set (null: unlimited), the others are kept."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=1000)
    quotas: QuotasModel | None = None


class ProjectPublic(BaseModel):
    name: str
    description: str | None = None
    quotas: QuotasModel
    usage: UsagePublic
    created_at: datetime
