"""Plain records the repositories return (detached from any session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.spec import EndpointSpec


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    name: str
    version: int
    framework: str | None
    sha256: str
    size_bytes: int
    files: int
    source: str
    path: str  # absolute folder in the artifact store
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    endpoint: str
    number: int
    model_ref: str  # resolved: "iris:3" or "hf://org/name@rev"
    spec: EndpointSpec  # the full spec as it was when the revision was made
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    name: str
    spec: EndpointSpec  # current spec (scaling/labels may be newer than the revision)
    status: EndpointStatus
    status_reason: str | None
    revision: int  # current (target) revision number
    model_ref: str  # resolved model ref of the current revision
    desired_replicas: int
    created_at: datetime
    updated_at: datetime
    generation: int  # bumped on every spec/desired change; lets the controller skip no-ops


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    """What the controller persists about a replica so a restarted server can adopt it."""

    replica_id: str
    endpoint: str
    revision: int
    state: ReplicaState
    host: str
    port: int
    pid: int | None
    started_at: datetime
    restarts: int = 0
    log_path: str = ""


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    endpoint: str
    at: datetime
    kind: EventKind
    message: str
    data: dict[str, Any] = field(default_factory=dict)
