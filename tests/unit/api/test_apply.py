"""POST /apply and GET /endpoints/{name}/export: plans, convergence, prune, access, 422s."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.core.access import Scope
from podium.core.spec import EndpointCreate
from tests.unit.api.conftest import make_token, push, spec

APPLY = "/api/v1/apply"


def _apply(client: TestClient, *docs: dict[str, Any], **params: Any) -> dict[str, Any]:
    params.setdefault("dry_run", False)
    body = {"documents": list(docs)}
    if "managed_by" in params:
        body["managed_by"] = params.pop("managed_by")
    r = client.post(APPLY, params=params, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _actions(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["action"], c["name"]) for c in plan["changes"]]


def _fields(change: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {f["field"]: (f["old"], f["new"]) for f in change["fields"]}


@pytest.fixture
def models(client: TestClient) -> TestClient:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    return client


def test_each_kind_of_change_and_a_second_apply_changes_nothing(models: TestClient) -> None:
    client = models
    plan = _apply(client, spec("iris-a"), spec("iris-b"), dry_run=True)
    assert _actions(plan) == [("create", "iris-a"), ("create", "iris-b")]
    assert plan["changed"] and plan["dry_run"] and plan["summary"]["create"] == 2
    assert client.get("/api/v1/endpoints/iris-a").status_code == 404  # a dry run
    create = _fields(plan["changes"][0])
    assert create["model"] == (None, "iris")
    assert create["labels.managed-by"] == (None, "podium-apply")

    assert _actions(_apply(client, spec("iris-a"), spec("iris-b"))) == [
        ("create", "iris-a"),
        ("create", "iris-b"),
    ]
    again = _apply(client, spec("iris-a"), spec("iris-b"))
    assert _actions(again) == [("no_change", "iris-a"), ("no_change", "iris-b")]
    assert not again["changed"] and again["summary"]["no_change"] == 2

    scaled = spec("iris-a", scaling={"max_replicas": 3})
    revised = spec("iris-b", env={"MODE": "fast"})
    plan = _apply(client, scaled, revised, dry_run=True)
    assert _actions(plan) == [("update_in_place", "iris-a"), ("update_revision", "iris-b")]
    assert _fields(plan["changes"][0]) == {"scaling.max_replicas": (1, 3)}
    assert _fields(plan["changes"][1]) == {"env.MODE": (None, "fast")}

    _apply(client, scaled, revised)
    a = client.get("/api/v1/endpoints/iris-a").json()
    b = client.get("/api/v1/endpoints/iris-b").json()
    assert (a["revision"], a["spec"]["scaling"]["max_replicas"]) == (1, 3)
    assert (b["revision"], b["spec"]["env"]) == (2, {"MODE": "fast"})
    assert _actions(_apply(client, scaled, revised)) == [
        ("no_change", "iris-a"),
        ("no_change", "iris-b"),
    ]

    # The document is the whole spec: what it leaves out goes back to the default.
    plan = _apply(client, spec("iris-a"), revised)
    assert _fields(plan["changes"][0]) == {"scaling.max_replicas": (3, 1)}


def test_a_new_model_version_is_a_new_revision(models: TestClient) -> None:
    _apply(models, spec("iris-a"))
    assert push(models, "iris", b"v2", filename="m.skops").status_code == 201
    plan = _apply(models, spec("iris-a"), dry_run=True)
    assert _actions(plan) == [("update_revision", "iris-a")]
    assert _fields(plan["changes"][0]) == {"model_ref": ("iris:1", "iris:2")}


def test_prune_deletes_only_what_the_same_manager_made(models: TestClient) -> None:
    client = models
    _apply(client, spec("kept"), spec("old"))
    _apply(client, spec("theirs"), managed_by="other-tool")
    assert client.post("/api/v1/endpoints", json=spec("by-hand")).status_code == 201

    mine = "podium-apply"
    plan = _apply(client, spec("kept"), prune=True, dry_run=True, managed_by=mine)
    assert _actions(plan) == [("no_change", "kept"), ("delete", "old")]
    assert _actions(_apply(client, spec("kept"))) == [("no_change", "kept")]  # no prune
    _apply(client, spec("kept"), prune=True, managed_by=mine)
    status = {
        n: client.get(f"/api/v1/endpoints/{n}").json()["status"]
        for n in ("kept", "old", "theirs", "by-hand")
    }
    assert status["old"] == "deleting"
    assert {status["kept"], status["theirs"], status["by-hand"]}.isdisjoint({"deleting"})


def test_export_then_apply_changes_nothing(models: TestClient) -> None:
    client = models
    doc = spec(
        "iris-x",
        scaling={"min_replicas": 0, "max_replicas": 4},
        env={"A": "1", "B": {"value": "2", "disabled": True}},
        labels={"team": "ml"},
        readiness={"kind": "tcp", "success_threshold": 2},
        resources={"cpus": 1, "memory": "1Gi"},
    )
    _apply(client, doc)
    r = client.get("/api/v1/endpoints/iris-x/export")
    assert r.status_code == 200, r.text
    exported = r.json()
    assert exported["kind"] == "endpoint" and exported["name"] == "iris-x"
    assert "revision" not in exported and "status" not in exported
    assert "managed-by" not in exported.get("labels", {})
    assert exported["scaling"] == {"min_replicas": 0, "max_replicas": 4}
    assert "max_queue" not in exported  # defaults are left out
    assert _actions(_apply(client, exported, dry_run=True)) == [("no_change", "iris-x")]

    # One made by hand: its export brings it under apply, which adds only its label.
    assert client.post("/api/v1/endpoints", json=spec("iris-h", timeout_s=9)).status_code == 201
    exported = client.get("/api/v1/endpoints/iris-h/export").json()
    plan = _apply(client, exported, dry_run=True)
    assert _fields(plan["changes"][0]) == {"labels.managed-by": (None, "podium-apply")}


def test_secrets_and_projects_and_values_never_shown(models: TestClient) -> None:
    client = models
    secret = {"kind": "secret", "name": "hf-token", "project": "team", "value": "s3cr3t-v4lue"}
    project = {"kind": "project", "name": "team", "quotas": {"max_endpoints": 3}}
    plan = _apply(client, secret, project)
    assert _actions(plan) == [("create", "team"), ("create", "hf-token")]
    assert "s3cr3t" not in str(plan)
    assert _fields(plan["changes"][1]) == {"value": (None, "(sensitive)")}
    again = _apply(client, secret, project)
    assert _actions(again) == [("no_change", "team"), ("no_change", "hf-token")]
    plan = _apply(client, {**secret, "value": "n3w"}, {**project, "quotas": {}})
    assert _actions(plan) == [("update_in_place", "team"), ("update_in_place", "hf-token")]
    assert _fields(plan["changes"][0]) == {"quotas.max_endpoints": (3, None)}
    assert "n3w" not in str(plan)
    assert [s["name"] for s in client.get("/api/v1/secrets?project=team").json()] == ["hf-token"]
    audit = client.get("/api/v1/audit")
    assert audit.status_code == 200, audit.text
    assert '"action":"apply.create"' in audit.text  # the audit trail holds the plans
    assert "s3cr3t" not in audit.text and "n3w" not in audit.text


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"model": "iris", "framework": "sklearn"}, "documents[1].name"),
        ({"name": "iris-a", "model": "iris", "replicas": 2}, "documents[1].replicas"),
        ({"kind": "thing", "name": "x"}, "documents[1].kind"),
        (["not", "a", "mapping"], "documents[1]"),
        ({"name": "iris-a", "model": "iris", "project": "ghost"}, "documents[1].project"),
        ({"name": "iris-a", "model": "ghost", "framework": "sklearn"}, "documents[1].model"),
        ({"name": "iris-a", "model": "iris", "framework": "nope"}, "documents[1].framework"),
        ({"kind": "secret", "name": "tok"}, "documents[1]"),
        ({"kind": "model", "name": "iris", "path": "./m"}, "documents[1].kind"),
        (
            {"name": "iris-a", "model": "iris", "scaling": {"max_replicas": 0}},
            "documents[1].scaling.max_replicas",
        ),
    ],
)
def test_bad_documents_are_refused_naming_the_field(
    models: TestClient, doc: Any, field: str
) -> None:
    r = models.post(APPLY, json={"documents": [spec("fine-one"), doc]})
    # an unknown model or project is a 404, as a create says it
    assert r.status_code == (404 if "ghost" in str(doc) else 422), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == field, r.json()
    assert models.get("/api/v1/endpoints/fine-one").status_code == 404  # nothing changed


def test_an_apply_never_escalates(models: TestClient, ctx: ApiContext) -> None:
    token = make_token(ctx.db, "team-only", (Scope.DEPLOY,), projects=("team",), tokens=ctx.tokens)
    assert models.post("/api/v1/projects", json={"name": "team"}).status_code == 201
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "documents": [
            {"kind": "secret", "name": "tok", "project": "team", "value": "v"},
            spec("iris-a"),
        ]
    }
    r = models.post(APPLY, json=body, headers=headers)
    assert r.status_code == 403, r.text
    assert "'default'" in r.json()["detail"]
    r = models.post(
        APPLY, json={"documents": [{"kind": "project", "name": "team"}]}, headers=headers
    )
    assert r.status_code == 403
    r = models.post(APPLY, json={"documents": body["documents"][:1]}, headers=headers)
    assert r.status_code == 200, r.text


def test_the_default_project_takes_quotas_too(client: TestClient) -> None:
    doc = {"kind": "project", "name": "default", "quotas": {"max_replicas": 5}}
    assert _actions(_apply(client, doc)) == [("update_in_place", "default")]
    assert _actions(_apply(client, doc)) == [("no_change", "default")]
    assert client.get("/api/v1/projects/default").json()["quotas"]["max_replicas"] == 5


def test_a_secret_over_64k_is_refused_by_apply_as_by_put(client: TestClient) -> None:
    big = "x" * (64 * 1024 + 1)
    r = client.put("/api/v1/secrets/big", json={"value": big})
    assert r.status_code == 422, r.text
    r = client.post(APPLY, json={"documents": [{"kind": "secret", "name": "big", "value": big}]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "documents[0].value"
    assert client.get("/api/v1/secrets").json() == []


def test_a_deleting_endpoint_is_refused_by_plan_naming_the_document(models: TestClient) -> None:
    assert models.post("/api/v1/endpoints", json=spec("iris-a")).status_code == 201
    assert models.delete("/api/v1/endpoints/iris-a").status_code == 202
    docs = {"documents": [{"kind": "secret", "name": "tok", "value": "v"}, spec("iris-a")]}
    r = models.post(APPLY, params={"dry_run": True}, json=docs)
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "documents[1].name"
    assert "being deleted" in r.json()["detail"]
    assert models.post(APPLY, json=docs).status_code == 409
    assert models.get("/api/v1/secrets").json() == []  # refused before anything changed


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"framework": "nope"}, "documents[1].framework"),
        ({"framework": "sklearn", "resources": {"cpus": 1000}}, "documents[1].resources.cpus"),
        ({"framework": "sklearn", "env": {"K": {"required": True}}}, "documents[1].env.K"),
        (
            {"framework": "sklearn", "env_from_secrets": {"K": "ghost"}},
            "documents[1].env_from_secrets.K",
        ),
    ],
)
def test_a_dry_run_creating_the_project_still_checks_its_endpoints(
    models: TestClient, extra: dict[str, Any], field: str
) -> None:
    docs = [{"kind": "project", "name": "team"}, spec("iris-a", project="team", **extra)]
    r = models.post(APPLY, params={"dry_run": True}, json={"documents": docs})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert models.post(APPLY, json={"documents": docs}).status_code == 422
    assert models.get("/api/v1/projects/team").status_code == 404  # nothing was created


def test_a_model_in_a_project_this_apply_creates_must_be_pushed(models: TestClient) -> None:
    secret = {"kind": "secret", "name": "tok", "project": "team", "value": "v"}
    ok = spec("iris-a", project="team", env_from_secrets={"K": "tok"})
    docs = [{"kind": "project", "name": "team"}, secret, ok]
    r = models.post(APPLY, params={"dry_run": True}, json={"documents": docs})
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "documents[2].model"
    body = {"documents": docs, "pending_models": {"team/iris": "sklearn"}}
    plan = _apply_body(models, body, dry_run=True)  # a secret this apply creates counts
    assert _actions(plan) == [("create", "team"), ("create", "tok"), ("create", "iris-a")]


def _apply_body(client: TestClient, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    r = client.post(APPLY, params=params, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_each_change_an_apply_makes_is_audited_under_its_project(models: TestClient) -> None:
    assert models.post("/api/v1/projects", json={"name": "team"}).status_code == 201
    docs = [{"kind": "secret", "name": "tok", "project": "team", "value": "s3cr3t"}, spec("iris-a")]
    _apply(models, *docs)
    _apply(models, spec("other"), prune=True, managed_by="podium-apply")
    team = models.get("/api/v1/audit", params={"project": "team"}).json()
    rows = team["entries"]
    assert ("secret.set", "tok") in [(r["action"], r["object_name"]) for r in rows]
    assert "s3cr3t" not in str(rows)
    default = models.get("/api/v1/audit", params={"project": "default"}).json()
    rows = default["entries"]
    done = {(r["action"], r["object_name"]) for r in rows}
    assert {("endpoint.create", "iris-a"), ("endpoint.delete", "iris-a")} <= done
    deleted = next(r for r in rows if r["action"] == "endpoint.delete")
    assert deleted["before"]["model"] == "iris"
    r = models.post(APPLY, params={"project": "team"}, json={"documents": [spec("iris-b")]})
    assert r.status_code == 422 and r.json()["field"] == "project"


def test_the_plan_applied_is_the_one_shown(models: TestClient) -> None:
    shown = _apply(models, spec("iris-a"), dry_run=True)
    again = _apply(models, spec("iris-a"), dry_run=True)
    assert shown["fingerprint"] == again["fingerprint"] and len(shown["fingerprint"]) == 64
    assert models.post("/api/v1/endpoints", json=spec("iris-a")).status_code == 201  # meanwhile
    r = models.post(
        APPLY, params={"expect": shown["fingerprint"]}, json={"documents": [spec("iris-a")]}
    )
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "expect"
    assert models.get("/api/v1/endpoints/iris-a").json()["revision"] == 1
    now = _apply(models, spec("iris-a"), dry_run=True)
    assert _apply(models, spec("iris-a"), expect=now["fingerprint"])["changed"]


def test_the_openapi_document_publishes_the_four_document_schemas(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    items = schemas["ApplyRequest"]["properties"]["documents"]["items"]["oneOf"]
    names = [i["$ref"].rsplit("/", 1)[1] for i in items]
    assert names == ["EndpointDocument", "ModelDocument", "SecretDocument", "ProjectDocument"]
    kinds = [schemas[n]["properties"]["kind"]["const"] for n in names]
    assert kinds == ["endpoint", "model", "secret", "project"]
    assert "kind" in schemas["SecretDocument"]["required"]


def test_prune_needs_a_manager_named(models: TestClient) -> None:
    r = models.post(APPLY, params={"prune": True}, json={"documents": [spec("iris-a")]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "managed_by"
    assert "--managed-by NAME" in r.json()["detail"]


def test_prune_never_reaches_a_project_the_token_lacks(models: TestClient, ctx: ApiContext) -> None:
    _apply(models, spec("mine"))  # managed, in default
    assert models.post("/api/v1/projects", json={"name": "team"}).status_code == 201
    token = make_token(ctx.db, "team-only", (Scope.DEPLOY,), projects=("team",), tokens=ctx.tokens)
    headers = {"Authorization": f"Bearer {token}"}
    doc = {"kind": "secret", "name": "tok", "project": "team", "value": "v"}
    body = {"documents": [doc], "managed_by": "podium-apply"}
    r = models.post(APPLY, params={"prune": True}, json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert [c["action"] for c in r.json()["changes"]] == ["create"]
    assert models.get("/api/v1/endpoints/mine").json()["status"] != "deleting"
    both = {"documents": [{"kind": "project", "name": "team"}, spec("iris-b")]}
    r = models.post(APPLY, json=both, headers=headers)
    assert r.status_code == 403, r.text
    pushing = {"documents": [doc], "pending_models": {"default/iris": None}}
    r = models.post(APPLY, params={"dry_run": True}, json=pushing, headers=headers)
    assert r.status_code == 403, r.text  # the client would push to default next


# Every field of the spec at a value other than its default (but `instance_type`, which
# `resources` replaces; `command` and `engine_args`, which the `command` framework and the
# presets take: the second document; `container`, framework `container`'s: the third).
EVERY_FIELD = {
    "project": "default",
    "model": "iris:1",
    "framework": "sklearn",
    "task": "tabular-classification",
    "resources": {"cpus": 0.5, "memory": "1Gi", "gpus": 0},
    "scaling": {
        "min_replicas": 0,
        "max_replicas": 3,
        "target_concurrency": 2,
        "stable_window": "20s",
        "rules": [{"metric": "queue_depth", "target": 5, "window": "10s", "watch_period": "5s"}],
    },
    "max_concurrency": 4,
    "max_queue": 16,
    "timeout_s": 30,
    "env": {"A": "1", "B": {"value": "2", "disabled": True}, "C": {"value": "3", "required": True}},
    "env_from_secrets": {"TOKEN": "tok"},
    "model_source": {"token_secret": "tok"},
    "visibility": "public",
    "rate_limit": {"rps": 10, "burst": 20},
    "observability": {"capture": {"sample": 0.5, "max_bytes": 100, "redact": ["password"]}},
    "tasks": {"max_attempts": 2, "lease_s": 90, "result_ttl_s": 600, "max_pending": 10},
    "labels": {"team": "ml"},
    "readiness": {"kind": "tcp", "port": 8080, "success_threshold": 2, "period_s": 2},
    "liveness": {"enabled": False, "kind": "tcp", "port": 8081, "timeout_s": 2},
    "trust_pickle": True,
    "batching": {"max_batch_size": 4, "max_wait_ms": 2},
}
COMMAND_FIELDS = {
    "framework": "command",
    "command": {"command": "python", "args": ["-m", "http.server", "{port}"], "port": 9000},
    "engine_args": {"workers": 2},
    # exec probes only where the user runs a program (framework command and presets)
    "liveness": {"kind": "exec", "command": ["true"], "timeout_s": 2},
}

# A container endpoint's block, each of its fields off its default (the third document).
CONTAINER_FIELDS = {
    "framework": "container",
    "container": {
        "image": "localhost/podium-test/busybox:1",
        "command": ["/bin/sh", "-c"],
        "args": ["exec httpd -f -p {port}"],
        "port": 9000,
        "health_route": "/ready",
        "env": {"MODE": "test"},
        "model_mount": "/models",
        "pull_policy": "never",
        "registry_secret": "tok",
    },
}


def test_export_then_apply_round_trips_every_field(models: TestClient) -> None:
    _apply(models, {"kind": "secret", "name": "tok", "value": "v"})
    given = {
        "iris-all": EVERY_FIELD,
        "iris-cmd": {**EVERY_FIELD, **COMMAND_FIELDS},
        "iris-box": {**EVERY_FIELD, **CONTAINER_FIELDS},
    }
    for name, body in given.items():
        _apply(models, {"name": name, **body})
        exported = models.get(f"/api/v1/endpoints/{name}/export").json()
        assert _actions(_apply(models, exported, dry_run=True)) == [("no_change", name)]
        assert set(body) - {"project"} <= set(exported)  # each one exported, not defaulted
        if "container" in body:  # every field of the block too
            assert exported["container"] == body["container"]
    covered = set(EVERY_FIELD) | set(COMMAND_FIELDS) | set(CONTAINER_FIELDS)
    covered |= {"name", "instance_type"}
    assert covered == set(EndpointCreate.model_fields)  # a new field joins this test


def test_a_pending_model_is_checked_with_its_framework(models: TestClient) -> None:
    """An exec probe is refused on an sklearn model: known from the model document before
    the push, so the client pushes nothing (review2 B8)."""
    probe = spec("iris-x", liveness={"kind": "exec", "command": ["true"]})
    probe.pop("framework", None)
    body = {"documents": [probe], "pending_models": {"default/iris": "sklearn"}}
    r = models.post(APPLY, params={"dry_run": True}, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith("documents[0].liveness")
    unknown = {"documents": [probe], "pending_models": {"default/iris": None}}
    assert _apply_body(models, unknown, dry_run=True)["changed"]  # checked once pushed


def test_the_apply_after_a_push_is_planned_as_its_dry_run(models: TestClient) -> None:
    """The versions pushed for an apply are still the latest, and the plan is the one the
    dry run showed: its fingerprint matches (review2 B2)."""
    _apply(models, spec("iris-a"))
    pending = {"documents": [spec("iris-a")], "pending_models": {"default/iris": "sklearn"}}
    shown = _apply_body(models, pending, dry_run=True)
    assert _fields(shown["changes"][0])["model_ref"] == ("iris:1", "iris (its next version)")
    assert push(models, "iris", b"v2", filename="m.skops").status_code == 201
    late = {**pending, "pushed_models": {"default/iris": 1}}  # another push came after ours
    r = models.post(APPLY, params={"expect": shown["fingerprint"]}, json=late)
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "pushed_models.default/iris"
    stray = {"documents": [spec("iris-a")], "pushed_models": {"default/iris": 2}}
    assert models.post(APPLY, json=stray).status_code == 422
    ours = {**pending, "pushed_models": {"default/iris": 2}}
    done = _apply_body(models, ours, expect=shown["fingerprint"])
    assert done["fingerprint"] == shown["fingerprint"]
    assert models.get("/api/v1/endpoints/iris-a").json()["model_ref"] == "iris:2"


def test_an_s3_model_is_applied_with_its_keys_named_as_secrets(client: TestClient) -> None:
    keys = {"access_key_secret": "s3-id", "secret_key_secret": "s3-key"}
    docs = [
        {"kind": "secret", "name": "s3-id", "value": "AKIAEXAMPLE"},
        {"kind": "secret", "name": "s3-key", "value": "s3-secret-v4lue"},
        spec("iris-s3", "s3://models/team/iris", model_source=keys),
    ]
    plan = _apply(client, *docs)
    assert _actions(plan) == [("create", "s3-id"), ("create", "s3-key"), ("create", "iris-s3")]
    assert "s3-secret-v4lue" not in str(plan)
    ep = client.get("/api/v1/endpoints/iris-s3").json()
    assert ep["model_ref"] == "s3://models/team/iris"
    assert ep["spec"]["model_source"] == {"token_secret": None, **keys}
    assert _actions(_apply(client, *docs)) == [
        ("no_change", "s3-id"),
        ("no_change", "s3-key"),
        ("no_change", "iris-s3"),
    ]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"model": "s3://Bad_Bucket/iris"}, "model"),
        ({"model": "s3://models/../iris"}, "model"),
        ({"framework": None}, "framework"),
        ({"model_source": {"access_key_secret": "s3-id"}}, "model_source"),
        (
            {"model_source": {"access_key_secret": "absent", "secret_key_secret": "absent"}},
            "model_source.access_key_secret",
        ),
    ],
)
def test_bad_s3_endpoints_are_refused_naming_the_field(
    client: TestClient, extra: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**spec("iris-s3", "s3://models/iris"), **extra}.items() if v}
    r = client.post("/api/v1/endpoints", json=body)
    assert r.status_code == 422, r.text
    fields = [e.get("field") for e in r.json().get("errors", [])] + [r.json().get("field")]
    assert any(f and f.endswith(field) for f in fields), r.text
