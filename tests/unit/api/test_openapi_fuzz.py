"""Every operation of the OpenAPI schema, fuzzed a little (valid and invalid data):
no input may cause a 5xx.

Hypothesis drives schemathesis' strategies directly: schemathesis' pytest integration
(`from_fixture(...).parametrize()`) does not run under pytest 9 (it sets `node._nodeid`).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from podium.api import ApiContext
from podium.core.service_counts import ServiceSnapshot
from tests.support.live import ScriptedGateway
from tests.unit.api.conftest import push, spec

_LONG = os.environ.get("PODIUM_FUZZ_PROFILE") == "podium-fuzz"  # `make fuzz`
_SETTINGS = settings(
    max_examples=300 if _LONG else 10,
    derandomize=not _LONG,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api_schema(
    app: FastAPI, ctx: ApiContext, admin_headers: dict[str, str]
) -> schemathesis.BaseSchema:
    ctx.live = ScriptedGateway(ServiceSnapshot())  # GET /live fuzzed for real (503 without)
    with TestClient(
        app, headers=admin_headers
    ) as client:  # something real to find, besides the 404s
        assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
        assert client.post("/api/v1/endpoints", json=spec()).status_code == 201
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


# What the SDK, the CLI and the docs (README, docs/*.md) call: each must be in the schema
# with its method. A new operation needs no change here; a renamed or lost one fails by name.
PROMISED = {
    ("GET", "/health"),
    ("GET", "/instance-types"),
    ("GET", "/models"),
    ("POST", "/models/{name}/versions"),
    ("GET", "/models/{name}"),
    ("DELETE", "/models/{name}"),
    ("GET", "/models/{name}/versions/{version}"),
    ("DELETE", "/models/{name}/versions/{version}"),
    ("GET", "/endpoints"),
    ("POST", "/endpoints"),
    ("GET", "/endpoints/{name}"),
    ("PATCH", "/endpoints/{name}"),
    ("DELETE", "/endpoints/{name}"),
    ("POST", "/endpoints/{name}/scale"),
    ("POST", "/endpoints/{name}/pause"),
    ("POST", "/endpoints/{name}/resume"),
    ("POST", "/endpoints/{name}/wake"),
    ("GET", "/endpoints/{name}/events"),
    ("GET", "/endpoints/{name}/revisions"),
    ("GET", "/endpoints/{name}/logs"),
    ("GET", "/endpoints/{name}/replicas/{replica_id}/metrics"),
    ("GET", "/whoami"),
    ("POST", "/session"),
    ("DELETE", "/session"),
    ("POST", "/tokens"),
    ("GET", "/tokens"),
    ("GET", "/tokens/{id}"),
    ("DELETE", "/tokens/{id}"),
    ("GET", "/audit"),
    ("GET", "/live"),
    ("GET", "/tasks/{id}"),  # issue 13: the SDK's TaskFuture, `podium task`
    ("DELETE", "/tasks/{id}"),
    ("GET", "/tasks/{id}/result"),
    ("GET", "/endpoints/{name}/tasks"),
    ("GET", "/endpoints/{name}/callback-key"),
    ("POST", "/endpoints/{name}/callback-key/rotate"),
}


def test_schema_is_valid_and_complete(api_schema: schemathesis.BaseSchema) -> None:
    operations = [r.ok() for r in api_schema.get_all_operations()]  # raises if invalid
    listed = [(op.method.upper(), op.path.removeprefix("/api/v1")) for op in operations]
    assert len(listed) == len(set(listed))  # no operation twice
    assert PROMISED - set(listed) == set()


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode))
def test_no_server_errors(
    api_schema: schemathesis.BaseSchema,
    mode: schemathesis.GenerationMode,
    admin_headers: dict[str, str],
) -> None:
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @_SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=admin_headers)  # an admin: past the 401s
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.text}")

        try:
            check()
        except Unsatisfiable:  # nothing invalid to send (e.g. GET /health in negative mode)
            assert mode is schemathesis.GenerationMode.NEGATIVE
    assert failures == []
