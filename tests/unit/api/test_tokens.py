"""API tokens through the API: shown once, stored hashed, valid at once, revoked at once,
validated; `whoami` shows the granted scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from podium.api import ApiContext
from podium.core.access import Scope
from podium.store import Database
from tests.unit.api.conftest import make_token

TOKENS = "/api/v1/tokens"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(client: TestClient, **body: Any) -> Any:
    return client.post(TOKENS, json={"name": "ci", "scopes": ["deploy"], **body})


def test_a_new_token_is_shown_once_and_stored_hashed(client: TestClient, db: Database) -> None:
    r = create(client, expires_in_s=3600, rate_limit={"rps": 5, "burst": 10})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    made = r.json()
    token = made["token"]
    assert token.startswith(f"pod_{made['id']}_")
    assert made["scopes"] == ["deploy"]
    assert made["projects"] == ["default"]
    assert made["rate_limit"] == {"rps": 5.0, "burst": 10}
    assert made["revoked_at"] is None
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)

    shown = client.get(f"{TOKENS}/{made['id']}").json()
    assert "token" not in shown
    assert shown["name"] == "ci"
    listed = client.get(TOKENS).json()
    assert made["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)

    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM tokens WHERE id = :id"), {"id": made["id"]})
        values = [str(v) for v in row.one()]
    secret = token.rsplit("_", 1)[1]
    assert not any(secret in v or token in v for v in values)


def test_a_new_token_works_at_once(client: TestClient) -> None:
    made = create(client, scopes=["deploy"]).json()
    who = client.get("/api/v1/whoami", headers=bearer(made["token"]))
    assert who.status_code == 200, who.text
    assert who.json() == {
        "id": made["id"],
        "name": "ci",
        "scopes": ["deploy", "read"],  # granted: deploy implies read
        "projects": ["default"],
        "expires_at": None,
    }


def test_a_revoked_token_fails_at_once(client: TestClient) -> None:
    made = create(client).json()
    headers = bearer(made["token"])
    assert client.get("/api/v1/endpoints", headers=headers).status_code == 200
    r = client.delete(f"{TOKENS}/{made['id']}")
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    r = client.get("/api/v1/endpoints", headers=headers)
    assert r.status_code == 401
    assert r.json()["detail"] == "the token is unknown or was revoked"
    assert made["id"] not in [t["id"] for t in client.get(TOKENS).json()]
    revoked = client.get(TOKENS, params={"include_revoked": "true"}).json()
    assert made["id"] in [t["id"] for t in revoked]


def test_an_expired_token_is_refused_as_expired(client: TestClient, ctx: ApiContext) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert ctx.tokens is not None
    token = make_token(ctx.db, "old", (Scope.READ,), tokens=ctx.tokens, expires_at=past)
    r = client.get("/api/v1/whoami", headers=bearer(token))
    assert r.status_code == 401
    assert r.json()["detail"] == "the token has expired"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["root"]}, "scopes.0"),
        ({"scopes": []}, "scopes"),
        ({"expires_in_s": 0}, "expires_in_s"),
        ({"expires_in_s": 10 * 365 * 86400 + 1}, "expires_in_s"),
        ({"name": "x" * 65}, "name"),
        ({"name": "bad\nname"}, "name"),
        ({"name": ""}, "name"),
        ({"projects": []}, "projects"),
        ({"projects": ["NOPE"]}, "projects.0"),
        ({"projects": ["ghost"]}, "projects.0"),  # well formed, does not exist
        ({"projects": ["default", "ghost"]}, "projects.1"),
        ({"rate_limit": {"rps": 1, "burst": 1, "per": "s"}}, "rate_limit.per"),
        ({"rate_limit": {"rps": 0, "burst": 1}}, "rate_limit.rps"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_a_bad_token_request_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    r = create(client, **body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_only_an_admin_of_every_project_grants_every_project(
    client: TestClient, ctx: ApiContext
) -> None:
    assert ctx.tokens is not None
    local_admin = make_token(ctx.db, "local-admin", (Scope.ADMIN,), tokens=ctx.tokens)
    headers = bearer(local_admin)
    r = client.post(
        TOKENS, json={"name": "all", "scopes": ["read"], "projects": None}, headers=headers
    )
    assert r.status_code == 403
    assert r.json()["field"] == "projects"
    r = client.post(TOKENS, json={"name": "mine", "scopes": ["read"]}, headers=headers)
    assert r.status_code == 201, r.text
    r = create(client, projects=None)  # the fixture's admin holds every project
    assert r.status_code == 201
    assert r.json()["projects"] is None


def test_a_non_admin_cannot_make_tokens(client: TestClient, ctx: ApiContext) -> None:
    assert ctx.tokens is not None
    deployer = make_token(ctx.db, "deployer", (Scope.DEPLOY,), tokens=ctx.tokens)
    r = client.post(TOKENS, json={"name": "x", "scopes": ["admin"]}, headers=bearer(deployer))
    assert r.status_code == 403
    assert "lacks scope 'admin'" in r.json()["detail"]


def test_unknown_token_id_is_a_404(client: TestClient) -> None:
    assert client.get(f"{TOKENS}/000000000000").status_code == 404
    assert client.delete(f"{TOKENS}/000000000000").status_code == 404


def test_an_admin_of_one_project_sees_and_revokes_only_its_tokens(
    client: TestClient, ctx: ApiContext, admin_token: str
) -> None:
    assert ctx.tokens is not None
    local = bearer(make_token(ctx.db, "local-admin", (Scope.ADMIN,), tokens=ctx.tokens))
    mine = client.post(TOKENS, json={"name": "mine", "scopes": ["read"]}, headers=local).json()
    everywhere = create(client, projects=None).json()

    listed = {t["id"] for t in client.get(TOKENS, headers=local).json()}
    assert mine["id"] in listed
    assert everywhere["id"] not in listed
    assert token_of(admin_token) not in listed
    assert client.get(f"{TOKENS}/{everywhere['id']}", headers=local).status_code == 404
    r = client.delete(f"{TOKENS}/{token_of(admin_token)}", headers=local)
    assert r.status_code == 404  # the admin of every project is out of its reach
    assert client.get("/api/v1/whoami").status_code == 200
    assert client.delete(f"{TOKENS}/{mine['id']}", headers=local).status_code == 200


def token_of(token: str) -> str:
    return token.split("_")[1]


def test_a_token_s_rate_limit_is_the_endpoint_spec_s(client: TestClient) -> None:
    """One model for a rate limit (core.spec.RateLimitSpec), whether on a token or on an
    endpoint: the same fields, bounds and schema."""
    doc = client.get("/api/v1/openapi.json").json()
    limit = doc["components"]["schemas"]["TokenCreate"]["properties"]["rate_limit"]
    assert {"$ref": "#/components/schemas/RateLimitSpec"} in limit["anyOf"]
