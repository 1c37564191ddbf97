"""The routing table as JSON, for the `routing_state` row (`routing_pg`).

Every field of `core.routing.EndpointRoute` travels, so a gateway in another process routes
exactly as the leader's own would. The body is what the leader wrote, so it is trusted:
decoding rebuilds the dataclasses without validating beyond their types (the pydantic
parts, `CaptureSpec` and `TaskSpec`, validate as they always do).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from podium.core.access import RateLimit, Visibility
from podium.core.observability_spec import CaptureSpec
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, ReplicaRoute
from podium.core.task_spec import TaskSpec


def encode(endpoints: Mapping[str, EndpointRoute]) -> str:
    """The routes as one JSON document (keys sorted: equal tables, equal text)."""
    return json.dumps(
        {name: _route(r) for name, r in endpoints.items()}, sort_keys=True, separators=(",", ":")
    )


def decode(body: str) -> dict[str, EndpointRoute]:
    """The routes `encode` wrote."""
    doc: dict[str, dict[str, Any]] = json.loads(body)
    return {name: _parse(d) for name, d in doc.items()}


def _route(r: EndpointRoute) -> dict[str, Any]:
    return {
        "name": r.name,
        "status": r.status.value,
        "replicas": [[x.replica_id, x.host, x.port, x.revision] for x in r.replicas],
        "timeout_s": r.timeout_s,
        "max_concurrency": r.max_concurrency,
        "max_queued_requests": r.max_queued_requests,
        "wait_timeout_s": r.wait_timeout_s,
        "created": r.created,
        "framework": r.framework,
        "openai": r.openai,
        "project": r.project,
        "visibility": r.visibility.value,
        "rate_limit": None if r.rate_limit is None else [r.rate_limit.rps, r.rate_limit.burst],
        "capture": None if r.capture is None else r.capture.model_dump(mode="json"),
        "tasks": r.tasks.model_dump(mode="json"),
    }


def _parse(d: Mapping[str, Any]) -> EndpointRoute:
    limit = d["rate_limit"]
    capture = d["capture"]
    return EndpointRoute(
        name=d["name"],
        status=EndpointStatus(d["status"]),
        replicas=tuple(
            ReplicaRoute(rid, host, int(port), int(rev)) for rid, host, port, rev in d["replicas"]
        ),
        timeout_s=float(d["timeout_s"]),
        max_concurrency=int(d["max_concurrency"]),
        max_queued_requests=int(d["max_queued_requests"]),
        wait_timeout_s=float(d["wait_timeout_s"]),
        created=int(d["created"]),
        framework=d["framework"],
        openai=d["openai"],
        project=d["project"],
        visibility=Visibility(d["visibility"]),
        rate_limit=None if limit is None else RateLimit(float(limit[0]), int(limit[1])),
        capture=None if capture is None else CaptureSpec.model_validate(capture),
        tasks=TaskSpec.model_validate(d["tasks"]),
    )
