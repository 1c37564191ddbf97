"""The spec fields of issue 14 through the real API: probe kinds and thresholds, env entries
with `required`/`disabled`, per-endpoint `resources` (checked against this node and the
project's quota). Every user mistake is a problem+json 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.backends.resources import node_capacity
from tests.unit.api.conftest import push, spec

EP = "/api/v1/endpoints"
NODE = node_capacity()


@pytest.fixture
def iris(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201


def _refused(r: Any, field: str, *words: str) -> str:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["field"] == field, body
    for w in words:
        assert w in body["detail"], body
    return str(body["detail"])


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"readiness": {"kind": "exec"}}, "readiness", "needs `command`"),
        (
            {"readiness": {"kind": "http", "command": ["true"]}},
            "readiness",
            "`command` applies only to exec probes",
        ),
        (
            {"liveness": {"kind": "exec", "command": ["true"], "port": 9}},
            "liveness",
            "`port` applies only to http and tcp probes",
        ),
        ({"readiness": {"success_threshold": 0}}, "readiness.success_threshold", ""),
        ({"readiness": {"kind": "udp"}}, "readiness.kind", ""),
        (
            {"readiness": {"kind": "exec", "command": ["sleep", "3600"]}},
            "readiness.kind",
            "exec probes run a program on the host: only for framework command and server "
            "presets, not for sklearn",
        ),
        ({"liveness": {"kind": "exec", "command": ["true"]}}, "liveness.kind", "presets"),
        (
            {"readiness": {"kind": "exec", "command": ["true"], "period_s": 0.001}},
            "readiness.period_s",
            "period_s >= 1",
        ),
        (
            {"liveness": {"timeout_s": 600}},
            "liveness.timeout_s",
            "timeout_s <= 60, not 600",
        ),
        (
            {"liveness": {"success_threshold": 2}},
            "liveness.success_threshold",
            "liveness success_threshold must be 1",
        ),
        (
            {"env": {"DUMP": {"value": "1", "required": True, "disabled": True}}},
            "env.DUMP",
            "both required and disabled",
        ),
        (
            {"env": {"API_KEY": {"required": True}}},
            "env.API_KEY",
            "required variable API_KEY has no value",
        ),
        # no process environment holds a NUL: it was stored, and every start then failed
        ({"env": {"TOKEN": "ab\u0000cd"}}, "env.TOKEN", "cannot hold a NUL"),
        ({"env": {"TOKEN": {"value": "\u0000"}}}, "env.TOKEN", "cannot hold a NUL"),
        ({"resources": {"memory": "4Gx"}}, "resources.memory", "not a memory size"),
        (
            {"resources": {"cpus": min(1024, NODE.cpus + 1)}},
            "resources.cpus",
            f"this node has {NODE.cpus} CPUs",
        ),
        (
            {"resources": {"memory": NODE.memory_mb + 1}},
            "resources.memory",
            f"this node has {NODE.memory_mb} MiB",
        ),
        ({"resources": {"gpus": NODE.gpus + 1}}, "resources.gpus", "this node has"),
        (
            {"instance_type": "cpu-large", "resources": {"cpus": 1}},
            "resources",
            "not both",
        ),
    ],
)
def test_new_fields_refused_name_the_field(
    client: TestClient, iris: None, change: dict[str, Any], field: str, words: str
) -> None:
    _refused(client.post(EP, json={**spec(), **change}), field, words)
    assert client.get(EP).json()["items"] == []


def test_required_variable_checked_at_update_and_filled_by_a_secret(
    client: TestClient, iris: None
) -> None:
    assert client.post(EP, json=spec()).status_code == 201
    missing = {"env": {"API_KEY": {"required": True}}}
    _refused(client.patch(f"{EP}/iris-ep", json=missing), "env.API_KEY", "env_from_secrets")
    assert client.put("/api/v1/secrets/api-key", json={"value": "s3cret"}).status_code == 200
    given = {**missing, "env_from_secrets": {"API_KEY": "api-key"}}
    r = client.patch(f"{EP}/iris-ep", json=given)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["env"] == {
        "API_KEY": {"value": None, "required": True, "disabled": False}
    }


def test_resources_size_the_endpoint_and_count_in_the_quota(client: TestClient, iris: None) -> None:
    r = client.post(EP, json=spec(resources={"cpus": 1, "memory": "1Gi"}))
    assert r.status_code == 201, r.text
    assert r.json()["size"] == {
        "name": "custom",
        "cpus": 1.0,
        "memory_mb": 1024,
        "gpus": 0,
        "price_per_hour": 0.0,
    }
    assert client.get(f"{EP}/iris-ep").json()["spec"]["resources"]["memory"] == 1024
    assert client.patch("/api/v1/projects/default", json={"quotas": {"max_cpus": 2}}).status_code
    # Two replicas of one CPU fit a quota of 2 CPUs; a third does not.
    scale = client.post(f"{EP}/iris-ep/scale", json={"min_replicas": 2, "max_replicas": 2})
    assert scale.status_code == 200, scale.text
    over = client.post(f"{EP}/iris-ep/scale", json={"min_replicas": 3, "max_replicas": 3})
    assert over.status_code == 409, over.text
    assert over.json()["field"] == "max_cpus"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"resources": {"gpus": NODE.gpus + 1}}, "documents[0].resources.gpus"),
        ({"env": {"API_KEY": {"required": True}}}, "documents[0].env.API_KEY"),
    ],
)
def test_a_dry_run_apply_checks_size_and_required_env(
    client: TestClient, iris: None, doc: dict[str, Any], field: str
) -> None:
    r = client.post(
        "/api/v1/apply", params={"dry_run": True}, json={"documents": [{**spec(), **doc}]}
    )
    _refused(r, field)


EXEC = {"kind": "exec", "command": ["true"], "period_s": 1}


def test_exec_probes_only_where_the_user_runs_a_program(client: TestClient, iris: None) -> None:
    """Exec probes run on the host, outside the replica's limits: only framework `command`
    and the presets, where the user already runs a program (review 14, finding 2)."""
    assert client.post(EP, json=spec()).status_code == 201
    # A model whose framework is taken from its version, and an update, are checked too.
    derived = {k: v for k, v in spec("iris-two", readiness=EXEC).items() if k != "framework"}
    _refused(client.post(EP, json=derived), "readiness.kind", "server presets")
    _refused(client.patch(f"{EP}/iris-ep", json={"readiness": EXEC}), "readiness.kind")
    command = {"command": "python", "args": ["-m", "http.server", "{port}"]}
    ok = spec("iris-cmd", framework="command", command=command, readiness=EXEC, liveness=EXEC)
    r = client.post(EP, json=ok)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["readiness"]["kind"] == "exec"
    # Back to a framework that runs no program of the user's: the probe must go too.
    back = client.patch(f"{EP}/iris-cmd", json={"framework": "sklearn", "command": None})
    _refused(back, "readiness.kind")
