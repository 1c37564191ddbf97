"""Projects over the real API with auth on: the project routes, the same endpoint name in
two projects, and isolation (a token of one project gets 403 on another's by-name routes,
before anything is looked up, and does not see it in lists)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.core.access import Scope
from tests.support.fake_nvml import one_gpu_node
from tests.unit.api.conftest import push, spec
from tests.unit.api.projects_support import Tokens, admin, secure, tokens

__all__ = ["admin", "one_gpu_node", "secure", "tokens"]

P = "/api/v1/projects"
EP = "/api/v1/endpoints"
H = dict[str, str]


def push_in(
    client: TestClient, headers: H, project: str, name: str = "iris", data: bytes = b"v1"
) -> Any:
    r = client.post(
        f"/api/v1/models/{name}/versions",
        params={"filename": "m.skops", "framework": "sklearn", "project": project},
        content=data,
        headers={**headers, "content-type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def team(secure: TestClient, admin: H) -> None:
    r = secure.post(P, json={"name": "team", "description": "ml team"}, headers=admin)
    assert r.status_code == 201, r.text


def test_project_routes(secure: TestClient, admin: H) -> None:
    r = secure.post(P, json={"name": "team", "quotas": {"max_replicas": 4}}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["quotas"] == {
        "max_endpoints": None,
        "max_replicas": 4,
        "max_cpus": None,
        "max_gpus": None,
        "max_memory_mb": None,
    }
    assert body["usage"] == {"endpoints": 0, "replicas": 0, "cpus": 0, "gpus": 0, "memory_mb": 0}
    again = secure.post(P, json={"name": "team"}, headers=admin)
    assert (again.status_code, again.json()["field"]) == (409, "name")
    bad = secure.post(P, json={"name": "x.y"}, headers=admin)
    assert (bad.status_code, bad.json()["field"]) == (422, "name")
    assert [p["name"] for p in secure.get(P, headers=admin).json()] == ["default", "team"]
    r = secure.patch(f"{P}/team", json={"quotas": {"max_cpus": 2}}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["quotas"]["max_replicas"] == 4  # kept: not named in the change
    assert r.json()["quotas"]["max_cpus"] == 2
    r = secure.patch(f"{P}/team", json={"quotas": {"max_replicas": None}}, headers=admin)
    assert r.json()["quotas"]["max_replicas"] is None
    assert secure.get(f"{P}/team", headers=admin).json()["description"] is None
    assert secure.get(f"{P}/ghost", headers=admin).status_code == 404
    assert secure.delete(f"{P}/default", headers=admin).status_code == 409
    assert secure.delete(f"{P}/team", headers=admin).status_code == 204
    assert secure.get(f"{P}/team", headers=admin).status_code == 404


def test_project_writes_need_admin_and_reads_are_limited_to_the_tokens_projects(
    secure: TestClient, admin: H, tokens: Tokens, team: None
) -> None:
    assert secure.get(P).status_code == 401
    deployer = tokens.make("ci", Scope.DEPLOY, projects=("team",))
    r = secure.post(P, json={"name": "other"}, headers=deployer)
    assert r.status_code == 403
    assert "lacks scope 'admin'" in r.json()["detail"]
    assert secure.patch(f"{P}/team", json={}, headers=deployer).status_code == 403
    assert secure.delete(f"{P}/team", headers=deployer).status_code == 403
    assert [p["name"] for p in secure.get(P, headers=deployer).json()] == ["team"]
    assert secure.get(f"{P}/team", headers=deployer).status_code == 200
    r = secure.get(f"{P}/default", headers=deployer)
    assert r.status_code == 403
    assert re.fullmatch(
        r"token 'ci' \([0-9a-f]{12}\) lacks scope 'read' on project 'default'", r.json()["detail"]
    )


def test_the_same_name_in_two_projects(secure: TestClient, admin: H, team: None) -> None:
    push_in(secure, admin, "default", data=b"default model")
    pushed = push_in(secure, admin, "team", data=b"team model")
    assert (pushed["name"], pushed["project"], pushed["ref"]) == ("iris", "team", "iris:1")
    a = secure.post(EP, json=spec("chat"), headers=admin)
    b = secure.post(EP, json=spec("chat", project="team"), headers=admin)
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert (a.json()["key"], a.json()["url"]) == ("chat", "http://127.0.0.1:8123/endpoints/chat")
    body = b.json()
    assert (body["name"], body["project"], body["key"], body["visibility"]) == (
        "chat",
        "team",
        "team.chat",
        "protected",
    )
    assert body["url"] == "http://127.0.0.1:8123/p/team/endpoints/chat"
    assert body["model_ref"] == "iris:1"  # the team's iris, as the team writes it
    got = secure.get(f"{EP}/chat", params={"project": "team"}, headers=admin).json()
    assert got["key"] == "team.chat"
    assert secure.get(f"{EP}/chat", headers=admin).json()["key"] == "chat"
    listed = secure.get(EP, headers=admin).json()["items"]
    assert [(e["project"], e["name"]) for e in listed] == [("default", "chat"), ("team", "chat")]
    only = secure.get(EP, params={"project": "team"}, headers=admin).json()["items"]
    assert [e["key"] for e in only] == ["team.chat"]
    # the team's model resolves in the team: its version is the one the team pushed
    models = secure.get("/api/v1/models", params={"project": "team"}, headers=admin).json()
    assert [(m["name"], m["project"], m["key"]) for m in models] == [("iris", "team", "team.iris")]
    assert models[0]["versions"][0]["used_by"] == ["chat"]
    events = secure.get(f"{EP}/chat/events", params={"project": "team"}, headers=admin).json()
    assert events["items"][0]["endpoint"] == "team.chat"
    revs = secure.get(f"{EP}/chat/revisions", params={"project": "team"}, headers=admin).json()
    assert revs[0]["model_ref"] == "iris:1"
    # deleting one leaves the other
    r = secure.delete(f"{EP}/chat", params={"project": "team"}, headers=admin)
    assert r.status_code == 202
    assert secure.get(f"{EP}/chat", headers=admin).json()["status"] == "pending"


def test_model_refs_resolve_within_the_project(secure: TestClient, admin: H, team: None) -> None:
    push_in(secure, admin, "default")
    r = secure.post(EP, json=spec("chat", project="team"), headers=admin)
    assert r.status_code == 404
    assert (r.json()["field"], r.json()["detail"]) == (
        "model",
        "model 'iris' not found in project 'team'",
    )
    r = secure.post(EP, json=spec("chat", project="team", model="default.iris"), headers=admin)
    assert (r.status_code, r.json()["field"]) == (422, "model")
    r = secure.post(EP, json=spec("chat", project="ghost"), headers=admin)
    assert (r.status_code, r.json()["field"]) == (404, "project")
    r = secure.post(
        "/api/v1/models/iris/versions",
        params={"filename": "m.skops", "project": "ghost"},
        content=b"x",
        headers={**admin, "content-type": "application/octet-stream"},
    )
    assert (r.status_code, r.json()["field"]) == (404, "project")


def test_a_token_of_one_project_cannot_see_or_touch_another(
    secure: TestClient, admin: H, tokens: Tokens, team: None
) -> None:
    push_in(secure, admin, "default")
    push_in(secure, admin, "team")
    assert secure.post(EP, json=spec("chat"), headers=admin).status_code == 201
    assert secure.post(EP, json=spec("chat", project="team"), headers=admin).status_code == 201
    mine = tokens.make("team-ci", Scope.DEPLOY, projects=("team",))
    # lists leave the other project out
    listed = secure.get(EP, headers=mine).json()["items"]
    assert [e["key"] for e in listed] == ["team.chat"]
    assert [m["key"] for m in secure.get("/api/v1/models", headers=mine).json()] == ["team.iris"]
    assert secure.get(EP, params={"project": "default"}, headers=mine).status_code == 403
    # every by-name route of the other project: 403, whether the endpoint exists or not
    for name in ("chat", "ghost"):
        for method, path, body in (
            ("GET", f"{EP}/{name}", None),
            ("PATCH", f"{EP}/{name}", {"max_queue": 3}),
            ("POST", f"{EP}/{name}/scale", {"min_replicas": 1, "max_replicas": 2}),
            ("POST", f"{EP}/{name}/pause", None),
            ("POST", f"{EP}/{name}/resume", None),
            ("POST", f"{EP}/{name}/wake", None),
            ("DELETE", f"{EP}/{name}", None),
            ("GET", f"{EP}/{name}/events", None),
            ("GET", f"{EP}/{name}/revisions", None),
            ("GET", f"{EP}/{name}/logs", None),
            ("GET", f"{EP}/{name}/replicas/r1/metrics", None),
            ("GET", f"/api/v1/models/{name}", None),
            ("DELETE", f"/api/v1/models/{name}", None),
        ):
            r = secure.request(method, path, json=body, headers=mine)
            assert r.status_code == 403, (method, path, r.text)
            assert "on project 'default'" in r.json()["detail"]
    r = secure.post(EP, json=spec("other"), headers=mine)
    assert r.status_code == 403
    assert secure.get(f"{EP}/chat", headers=admin).json()["status"] == "pending"  # untouched
    # its own project: allowed
    r = secure.post(f"{EP}/chat/pause", params={"project": "team"}, headers=mine)
    assert (r.status_code, r.json()["status"]) == (200, "paused")
    # a read token reads but does not change
    reader = tokens.make("viewer", Scope.READ, projects=("team",))
    assert secure.get(f"{EP}/chat", params={"project": "team"}, headers=reader).status_code == 200
    r = secure.post(f"{EP}/chat/resume", params={"project": "team"}, headers=reader)
    assert r.status_code == 403
    assert "lacks scope 'deploy' on project 'team'" in r.json()["detail"]
    # an invoke-only token may not list: it reads nothing
    caller = tokens.make("app", Scope.INVOKE, projects=None)
    r = secure.get(EP, headers=caller)
    assert r.status_code == 403
    assert "lacks scope 'read'" in r.json()["detail"]


def test_a_project_that_holds_things_cannot_be_deleted(
    secure: TestClient, admin: H, team: None
) -> None:
    push_in(secure, admin, "team")
    r = secure.delete(f"{P}/team", headers=admin)
    assert r.status_code == 409
    assert r.json()["detail"] == "project 'team' still holds models: delete them first"
    assert (
        secure.delete("/api/v1/models/iris", params={"project": "team"}, headers=admin).status_code
        == 204
    )
    assert secure.delete(f"{P}/team", headers=admin).status_code == 204


def test_usage_counts_endpoints_replicas_and_cpus(
    secure: TestClient, admin: H, team: None, one_gpu_node: None
) -> None:
    push_in(secure, admin, "team")
    two = spec(
        "ep-a",
        project="team",
        instance_type="cpu-medium",
        scaling={"min_replicas": 2, "max_replicas": 3},
    )
    assert secure.post(EP, json=two, headers=admin).status_code == 201
    gpu = spec("ep-b", project="team", instance_type="gpu-small")
    assert secure.post(EP, json=gpu, headers=admin).status_code == 201
    zero = spec("ep-c", project="team", scaling={"min_replicas": 0, "max_replicas": 1})
    assert secure.post(EP, json=zero, headers=admin).status_code == 201
    usage = secure.get(f"{P}/team", headers=admin).json()["usage"]
    # ep-c at zero: none; memory: 2 x cpu-medium (4 GiB) + gpu-small (16 GiB)
    assert usage == {"endpoints": 2, "replicas": 3, "cpus": 8, "gpus": 1, "memory_mb": 24576}
    secure.post(f"{EP}/ep-b/pause", params={"project": "team"}, headers=admin)
    usage = secure.get(f"{P}/team", headers=admin).json()["usage"]
    assert usage == {"endpoints": 1, "replicas": 2, "cpus": 4, "gpus": 0, "memory_mb": 8192}
    listed = {p["name"]: p["usage"] for p in secure.get(P, headers=admin).json()}
    assert listed["team"] == usage and listed["default"]["endpoints"] == 0


def test_push_helper_of_the_default_project_still_works(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").json()["project"] == "default"


def test_a_key_is_never_taken_for_a_name(
    secure: TestClient, admin: H, tokens: Tokens, team: None
) -> None:
    """`team.chat` asked in `default` is a name that cannot exist (404), never project
    team's endpoint reached past the check on `default`."""
    push_in(secure, admin, "team")
    assert secure.post(EP, json=spec("chat", project="team"), headers=admin).status_code == 201
    mine = tokens.make("default-ci", Scope.DEPLOY, projects=("default",))
    for method, path in (
        ("GET", f"{EP}/team.chat"),
        ("POST", f"{EP}/team.chat/pause"),
        ("DELETE", f"{EP}/team.chat"),
        ("GET", f"{EP}/team.chat/events"),
        ("GET", f"{EP}/team.chat/revisions"),
        ("GET", f"{EP}/team.chat/logs"),
        ("GET", "/api/v1/models/team.iris"),
        ("DELETE", "/api/v1/models/team.iris"),
    ):
        r = secure.request(method, path, headers=mine)
        assert r.status_code == 404, (method, path, r.text)
    assert secure.get(f"{EP}/chat", params={"project": "team"}, headers=admin).json()["status"] == (
        "pending"
    )
