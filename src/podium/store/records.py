"""Plain records the repositories return (detached from any session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podium.core.access import DEFAULT_PROJECT, split_key
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.quotas import Quotas
from podium.core.spec import EndpointSpec


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    name: str  # the model's key (`core.access.endpoint_key`): `iris`, or `team.iris`
    version: int
    framework: str | None
    sha256: str
    size_bytes: int
    files: int
    source: str
    path: str  # absolute folder in the artifact store
    created_at: datetime
    project: str = DEFAULT_PROJECT

    @property
    def ref(self) -> str:
        """The stored reference, by key: `iris:3`, `team.iris:3`."""
        return f"{self.name}:{self.version}"

    @property
    def bare_name(self) -> str:
        """The name users give and see, within the project: `iris`."""
        return split_key(self.name)[1]

    @property
    def bare_ref(self) -> str:
        """`iris:3`, as users write it within the project."""
        return f"{self.bare_name}:{self.version}"


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    endpoint: str
    number: int
    model_ref: str  # resolved: "iris:3" or "hf://org/name@rev"
    spec: EndpointSpec  # the full spec as it was when the revision was made
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    name: str  # the endpoint's key (`core.access.endpoint_key`): `chat`, or `team.chat`
    spec: EndpointSpec  # current spec (scaling/labels may be newer than the revision)
    status: EndpointStatus
    status_reason: str | None
    revision: int  # current (target) revision number
    model_ref: str  # resolved model ref of the current revision
    desired_replicas: int
    created_at: datetime
    updated_at: datetime
    generation: int  # bumped on every spec/desired change; lets the controller skip no-ops
    project: str = DEFAULT_PROJECT

    @property
    def bare_name(self) -> str:
        """The name users give and see, within the project (`spec.name`)."""
        return split_key(self.name)[1]


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
class EndpointMemoryRecord:
    """The controller's memory of one endpoint that outlives the controller (a restart of
    the server, another server taking the lead): crash streaks, the failure and the
    generation it applies to, the autoscaler's last decision. Times are wall-clock (UTC):
    monotonic readings mean nothing to another process."""

    endpoint: str
    crash_streak: int = 0  # crashes before ready, in a row
    crashed_at: datetime | None = None  # the last of them
    backoff_until: datetime | None = None  # no start of the endpoint before this
    serving_crashes: int = 0  # crashes/hangs while serving with no success in between
    serving_revision: int | None = None  # the revision those crashes are of
    restarts: int = 0  # replacements started after crashes
    failure: str | None = None  # why the target revision cannot run
    failure_generation: int | None = None  # the endpoint generation `failure` applies to
    scale_desired: int | None = None  # the count the autoscaler last wrote
    scale_reason: str | None = None  # and why
    scaled_at: datetime | None = None  # and when


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    endpoint: str
    at: datetime
    kind: EventKind
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    name: str
    description: str | None
    quotas: Quotas
    created_at: datetime
