"""Podium's Python SDK: talks to a Podium server over HTTP (httpx + pydantic + core only).

    from podium.client import PodiumClient, EndpointStatus

    with PodiumClient() as podium:                       # $PODIUM_URL or 127.0.0.1:8000
        podium.push_model("./iris", "iris", framework="sklearn")
        podium.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
        podium.wait_for("iris", {EndpointStatus.RUNNING})
        podium.invoke("iris", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})

The token: `PodiumClient(token=...)`, else $PODIUM_TOKEN, else `$PODIUM_HOME/credentials`
(written by `podium up`; read only for a loopback server URL). Errors are those of
`podium.core.errors`, re-exported here
(401 `Unauthenticated`, 403 `Forbidden`, 409 `QuotaExceeded`, 429 `RateLimited`, …).
A request refused with 429, or 503 and Retry-After, is retried (`RetryPolicy`,
`PodiumClient(max_retries=…)`).

Besides `PodiumClient`: `AsyncClient` (the endpoint lifecycle and data plane, awaited), the
huggingface_hub-shaped `create_inference_endpoint`/`get_inference_endpoint`/
`list_inference_endpoints` → `InferenceEndpoint`, and the Scale Launch-shaped
`create_model_endpoint`/`get_model_endpoint`/`list_model_endpoints`/`edit_model_endpoint`/
`delete_model_endpoint` → `ModelEndpoint` (docs/sdk.md).
"""

from podium.client._access import DEFAULT_URL, TOKEN_ENV, credentials_path, discover_token
from podium.client._async import AsyncClient, AsyncTaskFuture
from podium.client._client import PodiumClient
from podium.client._errors import WaitTimeout, error_from_response, invalid_from_validation
from podium.client._inference_endpoint import (
    STATUS_MAP,
    InferenceEndpoint,
    create_inference_endpoint,
    get_inference_endpoint,
    list_inference_endpoints,
)
from podium.client._jobs import Job
from podium.client._launch import (
    ModelEndpoint,
    create_model_endpoint,
    delete_model_endpoint,
    edit_model_endpoint,
    get_model_endpoint,
    list_model_endpoints,
)
from podium.client._retry import RetryPolicy
from podium.client._tasks import Endpoint, TaskFailed, TaskFuture
from podium.client._views import (
    AuditEntry,
    CreatedToken,
    ProjectUsage,
    ProjectView,
    Quotas,
    SecretView,
    TokenView,
    UsageReport,
    UsageRow,
    WhoAmI,
)
from podium.core.callbacks import verify as verify_signature
from podium.core.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    LoadError,
    NotFound,
    OutOfMemory,
    PodiumError,
    QuotaExceeded,
    RateLimited,
    Retryable,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from podium.core.job_schemas import FileOut, JobOut
from podium.core.live_schemas import LiveCounts, LiveEndpoint, LiveRecords, LiveReplica, LiveView
from podium.core.metric_schemas import MetricHistory
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.quotas import QUOTA_NAMES
from podium.core.record_schemas import RequestRecordPage, RequestRecordPublic, StatusClass
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
from podium.core.task_schemas import TaskAttemptOut, TaskCallbackOut, TaskOut, TaskPage
from podium.core.tasks import TaskStatus

__all__ = [
    "DEFAULT_URL",
    "QUOTA_NAMES",
    "STATUS_MAP",
    "TOKEN_ENV",
    "AsyncClient",
    "AsyncTaskFuture",
    "AuditEntry",
    "Conflict",
    "CreatedToken",
    "Endpoint",
    "EndpointCreate",
    "EndpointPublic",
    "EndpointSpec",
    "EndpointStatus",
    "EndpointUpdate",
    "EventKind",
    "EventPublic",
    "FileOut",
    "Forbidden",
    "Gone",
    "InferenceEndpoint",
    "InstanceType",
    "Invalid",
    "Job",
    "JobOut",
    "LiveCounts",
    "LiveEndpoint",
    "LiveRecords",
    "LiveReplica",
    "LiveView",
    "LoadError",
    "LogLine",
    "MetricHistory",
    "ModelEndpoint",
    "ModelPublic",
    "ModelVersionPublic",
    "ModelVersionPushed",
    "NotFound",
    "OutOfMemory",
    "PodiumClient",
    "PodiumError",
    "ProjectUsage",
    "ProjectView",
    "QuotaExceeded",
    "Quotas",
    "RateLimited",
    "ReplicaPublic",
    "ReplicaState",
    "RequestRecordPage",
    "RequestRecordPublic",
    "RetryPolicy",
    "Retryable",
    "RevisionPublic",
    "ScalingSpec",
    "SecretView",
    "StatusClass",
    "TaskAttemptOut",
    "TaskCallbackOut",
    "TaskFailed",
    "TaskFuture",
    "TaskOut",
    "TaskPage",
    "TaskStatus",
    "TokenView",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "UsageReport",
    "UsageRow",
    "WaitTimeout",
    "WhoAmI",
    "create_inference_endpoint",
    "create_model_endpoint",
    "credentials_path",
    "delete_model_endpoint",
    "discover_token",
    "edit_model_endpoint",
    "error_from_response",
    "get_inference_endpoint",
    "get_model_endpoint",
    "invalid_from_validation",
    "list_inference_endpoints",
    "list_model_endpoints",
    "verify_signature",
]
