"""Podium's Python SDK: talks to a Podium server over HTTP (httpx + pydantic + core only).

    from podium.client import PodiumClient, EndpointStatus

    with PodiumClient() as podium:                       # $PODIUM_URL or 127.0.0.1:8000
        podium.push_model("./iris", "iris", framework="sklearn")
        podium.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
        podium.wait_for("iris", {EndpointStatus.RUNNING})
        podium.invoke("iris", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})

Errors are those of `podium.core.errors`, re-exported here.
"""

from podium.client._client import DEFAULT_URL, PodiumClient
from podium.client._errors import error_from_response, invalid_from_validation
from podium.core.errors import (
    Conflict,
    Invalid,
    LoadError,
    NotFound,
    OutOfMemory,
    PodiumError,
    Retryable,
    TooLarge,
    Unavailable,
)
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.schemas import (
    EndpointPublic,
    EventPublic,
    LogLine,
    ModelPublic,
    ModelVersionPublic,
    ModelVersionPushed,
    ReplicaPublic,
    RevisionPublic,
)
from podium.core.spec import (
    EndpointCreate,
    EndpointSpec,
    EndpointUpdate,
    InstanceType,
    ScalingSpec,
)

__all__ = [
    "DEFAULT_URL",
    "Conflict",
    "EndpointCreate",
    "EndpointPublic",
    "EndpointSpec",
    "EndpointStatus",
    "EndpointUpdate",
    "EventKind",
    "EventPublic",
    "InstanceType",
    "Invalid",
    "LoadError",
    "LogLine",
    "ModelPublic",
    "ModelVersionPublic",
    "ModelVersionPushed",
    "NotFound",
    "OutOfMemory",
    "PodiumClient",
    "PodiumError",
    "ReplicaPublic",
    "ReplicaState",
    "Retryable",
    "RevisionPublic",
    "ScalingSpec",
    "TooLarge",
    "Unavailable",
    "error_from_response",
    "invalid_from_validation",
]
