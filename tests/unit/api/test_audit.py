"""The audit trail: every mutating control request, allowed or refused, leaves an entry
with who, what, before/after, from where and the result; never a token or a secret."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from podium.api import ApiContext, create_api
from podium.api.access import needs
from podium.api.audit import ANONYMOUS_BURST, AnonymousBudget
from podium.core.access import Scope, parse_token
from tests.unit.api.conftest import make_token, push, spec

AUDIT = "/api/v1/audit"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def entries(client: TestClient, **filters: Any) -> list[dict[str, Any]]:
    r = client.get(AUDIT, params=filters)
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


def token_id(token: str) -> str:
    return token.split("_")[1]


def test_an_endpoint_change_is_recorded_with_before_and_after(
    client: TestClient, ctx: ApiContext
) -> None:
    assert ctx.tokens is not None
    deployer = make_token(ctx.db, "ci", (Scope.DEPLOY,), tokens=ctx.tokens)
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    r = client.post("/api/v1/endpoints", json=spec(), headers=bearer(deployer))
    assert r.status_code == 201
    r = client.patch(
        "/api/v1/endpoints/iris-ep",
        json={"scaling": {"min_replicas": 2, "max_replicas": 3}},
        headers=bearer(deployer),
    )
    assert r.status_code == 200, r.text

    created, updated = entries(client, action="endpoint")
    assert created["action"] == "endpoint.create"
    assert (created["actor"], created["actor_name"]) == (token_id(deployer), "ci")
    assert (created["object_kind"], created["object_name"]) == ("endpoint", "iris-ep")
    assert created["project"] == "default"
    assert created["before"] is None
    assert created["after"]["spec"]["model"] == "iris"
    assert created["address"] == "testclient"
    assert (created["result"], created["detail"]) == (201, None)

    assert updated["action"] == "endpoint.update"
    assert updated["before"]["spec"]["scaling"]["min_replicas"] == 1
    assert updated["after"]["spec"]["scaling"]["min_replicas"] == 2
    assert "replicas" not in updated["after"]  # the spec and status, not the replicas
    assert updated["result"] == 200


def test_refused_attempts_are_recorded(client: TestClient, ctx: ApiContext) -> None:
    assert ctx.tokens is not None
    reader = make_token(ctx.db, "viewer", (Scope.READ,), tokens=ctx.tokens)
    r = client.post("/api/v1/endpoints/iris-ep/pause", headers={"Authorization": ""})
    assert r.status_code == 401
    r = client.post("/api/v1/endpoints/iris-ep/pause", headers=bearer(reader))
    assert r.status_code == 403
    r = client.post("/api/v1/endpoints/iris-ep/pause")
    assert r.status_code == 404
    r = client.post("/api/v1/endpoints", json={"name": "x"})
    assert r.status_code == 422

    anonymous, refused, missing, invalid = entries(client)
    assert (anonymous["actor"], anonymous["actor_name"]) == ("-", "anonymous")
    assert (anonymous["action"], anonymous["result"]) == ("endpoint.pause", 401)
    assert anonymous["object_name"] == "iris-ep"
    assert anonymous["project"] == "default"
    assert "no token" in anonymous["detail"]
    assert (refused["actor_name"], refused["result"]) == ("viewer", 403)
    assert "lacks scope 'deploy' on project 'default'" in refused["detail"]
    assert (missing["actor_name"], missing["result"]) == ("test-admin", 404)
    assert missing["before"] is None and missing["after"] is None
    assert (invalid["action"], invalid["result"]) == ("endpoint.create", 422)
    assert invalid["object_name"] == "x"  # from the request body
    assert invalid["detail"]


def test_token_strings_never_reach_the_log(
    client: TestClient, app: FastAPI, admin_token: str
) -> None:
    made = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["read"]}).json()
    with TestClient(app) as browser:
        assert browser.post("/api/v1/session", json={"token": made["token"]}).status_code == 200
    assert client.delete(f"/api/v1/tokens/{made['id']}").status_code == 200

    log = entries(client)
    assert [e["action"] for e in log] == ["token.create", "session.create", "token.revoke"]
    create, login, revoke = log
    assert create["after"]["token"] == "[redacted]"
    assert create["object_name"] == made["id"]
    assert login["actor"] == made["id"]
    assert revoke["before"]["revoked_at"] is None
    assert revoke["after"]["revoked_at"] is not None
    dumped = json.dumps(log)
    for secret in (made["token"], admin_token):
        assert secret not in dumped
        # Its secret part alone (`parse_token`: a urlsafe secret may itself contain "_", so
        # splitting on the last one could leave a single character, found anywhere).
        parsed = parse_token(secret)
        assert parsed is not None and parsed[1] not in dumped


def test_reads_are_not_recorded(client: TestClient) -> None:
    client.get("/api/v1/endpoints")
    client.get("/api/v1/endpoints/nope")
    assert entries(client) == []


def test_filters_and_paging(client: TestClient, ctx: ApiContext) -> None:
    assert ctx.tokens is not None
    other = make_token(ctx.db, "other", (Scope.DEPLOY,), tokens=ctx.tokens)
    for name in ("a1", "a2", "a3"):
        client.post(f"/api/v1/endpoints/{name}/pause")
    client.post("/api/v1/endpoints/b1/resume", headers=bearer(other))
    client.post("/api/v1/tokens", json={"name": "t", "scopes": ["read"]})

    assert [e["object_name"] for e in entries(client, action="endpoint.pause")] == [
        "a1",
        "a2",
        "a3",
    ]
    assert [e["object_name"] for e in entries(client, actor="other")] == ["b1"]
    assert [e["object_name"] for e in entries(client, actor=token_id(other))] == ["b1"]
    assert len(entries(client, action="token")) == 1
    assert len(entries(client, project="default")) == 4  # a token belongs to no project
    first = entries(client, limit=2)
    assert len(first) == 2
    rest = entries(client, after_id=first[-1]["id"])
    assert [e["id"] for e in first + rest] == [e["id"] for e in entries(client)]
    assert len(rest) == 3
    assert client.get(AUDIT, params={"limit": 0}).status_code == 422


def test_a_new_mutating_route_is_audited_without_code_of_its_own(
    app: FastAPI, client: TestClient
) -> None:
    def polish(name: str) -> dict[str, str]:
        return {"name": name, "value": "shiny-secret"}

    app.add_api_route(
        "/api/v1/widgets/{name}/polish",
        polish,
        methods=["POST"],
        dependencies=[needs(Scope.DEPLOY)],
    )
    assert client.post("/api/v1/widgets/w1/polish").status_code == 200
    (entry,) = entries(client)
    assert (entry["action"], entry["object_kind"], entry["object_name"]) == (
        "widget.polish",
        "widget",
        "w1",
    )
    assert entry["after"] == {"name": "w1", "value": "[redacted]"}


def test_a_failed_audit_write_does_not_fail_the_action(
    client: TestClient, app: FastAPI, ctx: ApiContext, caplog: Any
) -> None:
    with ctx.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit"))
    r = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["read"]})
    assert r.status_code == 201
    assert app.state.audit.failures == 1
    assert "audit entry lost (token.create" in caplog.text
    assert r.json()["token"] not in caplog.text


def test_the_address_is_the_client_s(server_url: str, admin_headers: dict[str, str]) -> None:
    with httpx.Client(base_url=server_url, headers=admin_headers, timeout=30) as http:
        assert http.post("/api/v1/endpoints/ghost/pause").status_code == 404
        (entry,) = http.get(AUDIT).json()["entries"]
    assert entry["address"] == "127.0.0.1"
    assert entry["result"] == 404


def test_with_auth_off_everyone_acts_and_the_log_says_so(ctx: ApiContext) -> None:
    open_ctx = replace(ctx, settings=replace(ctx.settings, auth=False))
    with TestClient(create_api(open_ctx)) as anyone:
        assert anyone.post("/api/v1/endpoints/ghost/pause").status_code == 404
        (entry,) = anyone.get(AUDIT).json()["entries"]
    assert (entry["actor"], entry["actor_name"]) == ("-", "auth disabled")


def test_an_admin_of_one_project_reads_only_its_entries(
    client: TestClient, ctx: ApiContext
) -> None:
    assert ctx.tokens is not None
    local = bearer(make_token(ctx.db, "local-admin", (Scope.ADMIN,), tokens=ctx.tokens))
    client.post("/api/v1/endpoints/here/pause")  # project default
    client.post("/api/v1/endpoints/there/pause", params={"project": "team"})
    client.post("/api/v1/tokens", json={"name": "t", "scopes": ["read"]})  # no project
    r = client.get(AUDIT, headers=local)
    assert r.status_code == 200
    assert [e["object_name"] for e in r.json()["entries"]] == ["here"]
    assert len(entries(client)) == 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_attempts_without_a_token_are_recorded_within_a_budget(
    client: TestClient, app: FastAPI, ctx: ApiContext, caplog: Any
) -> None:
    """Anyone who reaches the port can send 401s: past 60 a minute (bursts of 60) they
    are counted and logged once a minute, not written; a token holder's never are."""
    clock = Clock()
    writer = app.state.audit
    writer.anonymous = AnonymousBudget(clock=clock)
    assert ctx.tokens is not None
    reader = make_token(ctx.db, "viewer", (Scope.READ,), tokens=ctx.tokens)
    anonymous = {"Authorization": ""}
    for _ in range(ANONYMOUS_BURST + 5):
        r = client.post("/api/v1/endpoints/iris-ep/pause", headers=anonymous)
        assert r.status_code == 401
    assert client.post("/api/v1/endpoints/iris-ep/pause", headers=bearer(reader)).status_code == 403
    logged = [m for m in caplog.messages if "unauthenticated attempts not recorded" in m]
    assert logged == ["1 unauthenticated attempts not recorded in the audit log (over 60 a minute)"]

    clock.now += 2.0  # two more entries' worth
    for _ in range(3):
        assert client.post("/api/v1/endpoints/iris-ep/pause", headers=anonymous).status_code == 401
    clock.now += 60.0
    assert client.post("/api/v1/endpoints/iris-ep/pause", headers=anonymous).status_code == 401

    rows = entries(client, limit=1000)
    assert len([e for e in rows if e["actor_name"] == "anonymous"]) == ANONYMOUS_BURST + 2 + 1
    assert [e["actor_name"] for e in rows if e["result"] == 403] == ["viewer"]
    assert writer.anonymous.unrecorded == 5 + 1
    logged = [m for m in caplog.messages if "unauthenticated attempts not recorded" in m]
    assert logged[1].startswith("5 unauthenticated attempts not recorded in the audit log")


def test_a_body_nested_too_deep_is_still_recorded(client: TestClient) -> None:
    """The trail reads the request body for the object's name: a body nested deeper than
    the JSON parser goes (RecursionError) names none, and the attempt is recorded."""
    r = client.post(
        "/api/v1/endpoints", content=b"[" * 5000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    (entry,) = entries(client)
    assert (entry["action"], entry["result"], entry["object_name"]) == (
        "endpoint.create",
        422,
        None,
    )


def test_newest_first_with_before_id_paging(client: TestClient) -> None:
    for name in ("a1", "a2", "a3", "a4", "a5"):
        client.post(f"/api/v1/endpoints/{name}/pause")
    oldest_first = [e["id"] for e in entries(client)]  # the default order is unchanged
    assert oldest_first == sorted(oldest_first) and len(oldest_first) == 5
    newest = entries(client, order="desc", limit=2)
    assert [e["object_name"] for e in newest] == ["a5", "a4"]
    older = entries(client, order="desc", limit=2, before_id=newest[-1]["id"])
    assert [e["object_name"] for e in older] == ["a3", "a2"]
    rest = entries(client, order="desc", before_id=older[-1]["id"])
    assert [e["object_name"] for e in rest] == ["a1"]
    # new entries after the newest one seen, oldest first: what a page polls for
    assert entries(client, after_id=newest[0]["id"]) == []
    assert client.get(AUDIT, params={"order": "newest"}).status_code == 422
    assert client.get(AUDIT, params={"before_id": 0}).status_code == 422
