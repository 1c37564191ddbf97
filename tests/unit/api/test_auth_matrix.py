"""The auth matrix: every control route of the OpenAPI document by every kind of caller →
the answer it must get.

`MATRIX` names what each route needs. A route in `/api/v1/openapi.json` without a row
fails `test_every_route_is_in_the_matrix`, so a new route cannot ship unchecked. Rows for
routes not (yet) in the document (those other parts of issue 11 add) are kept but not
asserted on. The app is real (a migrated SQLite store, real tokens made by TokenRepo and
loaded into the token directory), and each route is called with each caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.api.access import From, routes
from podium.artifacts.store import ArtifactStore
from podium.backends.local_logs import LocalLogs
from podium.core.access import Scope, TokenDirectory
from podium.core.service_counts import ServiceSnapshot
from podium.core.settings import Settings
from podium.store import Database
from tests.support.live import ScriptedGateway
from tests.unit.api.conftest import live_tokens, make_token, push, spec


class Need(Enum):
    PUBLIC = "no token"
    TOKEN = "any valid token"
    READ = "read on the project (default here)"
    READ_ANY = "read on the project if one is named, else on any project"
    DEPLOY = "deploy on the project"
    DEPLOY_ANY = "deploy on any project (apply: then on each project its documents touch)"
    INVOKE = "invoke on the project (tasks: results are model outputs)"
    INVOKE_TASK = "invoke on the object's project (invoke anywhere, then the task's, job's, file's)"
    ADMIN = "admin"
    ADMIN_ALL = "admin on every project (a token bound to none)"


MATRIX: dict[tuple[str, str], Need] = {
    # files and batch jobs (issue 13): model inputs and outputs, so invoke (not read)
    ("POST", "/files"): Need.INVOKE,
    ("GET", "/files/{file_id}"): Need.INVOKE_TASK,
    ("GET", "/files/{file_id}/content"): Need.INVOKE_TASK,
    ("DELETE", "/files/{file_id}"): Need.INVOKE_TASK,
    ("POST", "/jobs"): Need.INVOKE,
    ("GET", "/jobs"): Need.INVOKE_TASK,
    ("GET", "/jobs/{job_id}"): Need.INVOKE_TASK,
    ("POST", "/jobs/{job_id}/cancel"): Need.INVOKE_TASK,
    ("GET", "/health"): Need.PUBLIC,
    ("POST", "/session"): Need.PUBLIC,
    ("DELETE", "/session"): Need.PUBLIC,
    ("GET", "/whoami"): Need.TOKEN,
    ("GET", "/instance-types"): Need.TOKEN,
    ("GET", "/frameworks"): Need.READ_ANY,  # the catalog (issue 14)
    # models
    ("GET", "/models"): Need.READ_ANY,
    ("GET", "/models/{name}"): Need.READ,
    ("GET", "/models/{name}/versions/{version}"): Need.READ,
    ("GET", "/models/{name}/versions/{version}/files"): Need.READ,
    ("POST", "/models/{name}/versions"): Need.DEPLOY,
    ("DELETE", "/models/{name}/versions/{version}"): Need.DEPLOY,
    ("DELETE", "/models/{name}"): Need.DEPLOY,
    # endpoints
    ("GET", "/endpoints"): Need.READ_ANY,
    ("POST", "/endpoints"): Need.DEPLOY,
    ("GET", "/endpoints/{name}"): Need.READ,
    ("PATCH", "/endpoints/{name}"): Need.DEPLOY,
    ("POST", "/endpoints/{name}/scale"): Need.DEPLOY,
    ("POST", "/endpoints/{name}/pause"): Need.DEPLOY,
    ("POST", "/endpoints/{name}/resume"): Need.DEPLOY,
    ("POST", "/endpoints/{name}/wake"): Need.DEPLOY,
    ("POST", "/endpoints/{name}/scale-to-zero"): Need.DEPLOY,
    ("DELETE", "/endpoints/{name}"): Need.DEPLOY,
    ("GET", "/endpoints/{name}/export"): Need.READ,
    ("POST", "/apply"): Need.DEPLOY_ANY,  # and deploy in each project its documents name
    ("GET", "/endpoints/{name}/events"): Need.READ,
    ("GET", "/endpoints/{name}/revisions"): Need.READ,
    ("GET", "/endpoints/{name}/logs"): Need.READ,
    ("GET", "/endpoints/{name}/replicas/{replica_id}/metrics"): Need.READ,
    ("GET", "/endpoints/{name}/requests"): Need.READ,  # request records (issue 12)
    ("GET", "/endpoints/{name}/metrics"): Need.READ,  # the metrics history (issue 12)
    # tokens and audit
    ("POST", "/tokens"): Need.ADMIN,
    ("GET", "/tokens"): Need.ADMIN,
    ("GET", "/tokens/{id}"): Need.ADMIN,
    ("DELETE", "/tokens/{id}"): Need.ADMIN,
    ("GET", "/audit"): Need.ADMIN,
    # projects, secrets, usage (the contract's routes; asserted once they are in the doc)
    ("GET", "/projects"): Need.READ_ANY,
    ("POST", "/projects"): Need.ADMIN_ALL,
    ("GET", "/projects/{name}"): Need.READ,
    ("PATCH", "/projects/{name}"): Need.ADMIN_ALL,
    ("DELETE", "/projects/{name}"): Need.ADMIN_ALL,
    ("GET", "/secrets"): Need.READ_ANY,
    ("PUT", "/secrets/{name}"): Need.DEPLOY,
    ("DELETE", "/secrets/{name}"): Need.DEPLOY,
    ("GET", "/usage"): Need.READ_ANY,
    # issue 12: the live view
    ("GET", "/live"): Need.READ_ANY,
    # issue 13: async tasks and their callback keys
    ("GET", "/tasks/{id}"): Need.INVOKE_TASK,
    ("DELETE", "/tasks/{id}"): Need.INVOKE_TASK,
    ("GET", "/tasks/{id}/result"): Need.INVOKE_TASK,
    ("GET", "/endpoints/{name}/tasks"): Need.INVOKE,
    ("GET", "/endpoints/{name}/callback-key"): Need.DEPLOY,
    ("POST", "/endpoints/{name}/callback-key/rotate"): Need.DEPLOY,
}

CALLERS = (
    "none",
    "read",
    "invoke",
    "deploy",
    "admin",
    "expired",
    "revoked",
    "other",
    "team-admin",
)
OK = "ok"  # anything but 401 and 403 (and never a 5xx): the caller got past access control


def expected(need: Need, caller: str) -> int | str:
    if need is Need.PUBLIC:
        return OK
    if caller in ("none", "expired", "revoked"):
        return 401
    if need is Need.TOKEN:
        return OK
    allowed = {
        Need.READ: {"read", "deploy", "admin"},
        # other, team-admin: read on their project
        Need.READ_ANY: {"read", "deploy", "admin", "other", "team-admin"},
        Need.DEPLOY: {"deploy", "admin"},
        Need.DEPLOY_ANY: {"deploy", "admin", "other", "team-admin"},
        Need.INVOKE: {"invoke", "admin"},
        # team-admin holds invoke (on team): past the first check, 404 for an unknown id
        Need.INVOKE_TASK: {"invoke", "admin", "team-admin"},
        Need.ADMIN: {"admin", "team-admin"},  # tokens and audit: those of its projects
        Need.ADMIN_ALL: {"admin"},
    }[need]
    return OK if caller in allowed else 403


# Path parameters: real objects where the route reads one (the model and the endpoint made
# below), an unknown token id (a 404 that is past access control).
PARAMS = {
    "{name}": "default",  # replaced per route below
    "{version}": "1",
    "{replica_id}": "iris-ep-r1-zzz",
    "{id}": "000000000000",
    "{file_id}": "file_000000",
    "{job_id}": "job_000000",
}


def _url(path: str) -> str:
    name = "default" if path.startswith("/projects") else "iris-ep"
    if path.startswith(("/models", "/secrets")):
        name = "iris"
    url = path.replace("{name}", name)
    for key, value in PARAMS.items():
        url = url.replace(key, value)
    return "/api/v1" + url


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str | None]
    paths: dict[tuple[str, str], Any]  # the OpenAPI document's operations


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("matrix")
    db = Database(f"sqlite:///{tmp / 'podium.db'}")
    db.migrate()
    past = datetime.now(UTC) - timedelta(minutes=1)
    tokens: dict[str, str | None] = {
        "none": None,
        "read": make_token(db, "reader", (Scope.READ,)),
        "invoke": make_token(db, "invoker", (Scope.INVOKE,)),
        "deploy": make_token(db, "deployer", (Scope.DEPLOY,)),
        "admin": make_token(db, "admin", (Scope.ADMIN,), projects=None),
        "expired": make_token(db, "old", (Scope.ADMIN,), projects=None, expires_at=past),
        "revoked": make_token(db, "gone", (Scope.ADMIN,), projects=None, revoked=True),
        "other": make_token(db, "team-deployer", (Scope.DEPLOY,), projects=("team",)),
        "team-admin": make_token(db, "team-admin", (Scope.ADMIN,), projects=("team",)),
    }
    settings = Settings(home=tmp / "home", port=8123)
    ctx = ApiContext(
        settings=settings,
        db=db,
        artifacts=ArtifactStore(settings.artifacts_dir),
        logs=LocalLogs(settings.logs_dir, settings.log_retention),
        wake=lambda _=None: None,
        tokens=TokenDirectory(live_tokens(db)),
        live=ScriptedGateway(ServiceSnapshot()),  # GET /live answers (503 without one)
    )
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with TestClient(create_api(ctx), headers=admin) as client:
        assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
        assert client.post("/api/v1/endpoints", json=spec()).status_code == 201
        paths = client.get("/api/v1/openapi.json").json()["paths"]
        operations = {
            (method.upper(), path.removeprefix("/api/v1")): op
            for path, item in paths.items()
            for method, op in item.items()
        }
        yield World(client, tokens, operations)
    db.dispose()


def test_every_route_is_in_the_matrix(world: World) -> None:
    missing = sorted(set(world.paths) - set(MATRIX))
    assert missing == [], f"add these routes to MATRIX with what they need: {missing}"


def _call(world: World, method: str, path: str, caller: str) -> Any:
    token = world.tokens[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {"Authorization": ""}
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return world.client.request(method, _url(path), **kwargs)


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX), ids=lambda v: str(v))
def test_route_answers_each_caller_as_the_matrix_says(world: World, method: str, path: str) -> None:
    if (method, path) not in world.paths:
        pytest.skip(f"{method} {path} is not in this build's OpenAPI document")
    need = MATRIX[(method, path)]
    wrong: list[str] = []
    # Callers that may act go last: their changes (a delete) must not hide a refusal.
    for caller in sorted(CALLERS, key=lambda c: expected(need, c) == OK):
        answer = _call(world, method, path, caller)
        want = expected(need, caller)
        got = answer.status_code
        if got >= 500 or (want == OK and got in (401, 403)) or (want != OK and got != want):
            wrong.append(f"{caller}: got {got}, want {want} ({answer.text[:200]})")
    assert wrong == [], f"{method} {path} needs {need.value}"


def test_a_refusal_says_why(world: World) -> None:
    r = _call(world, "GET", "/endpoints/{name}", "none")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == 'Bearer realm="podium"'
    assert r.json()["title"] == "Unauthorized"
    assert "no token" in r.json()["detail"]

    r = _call(world, "GET", "/endpoints/{name}", "expired")
    assert (r.status_code, r.json()["detail"]) == (401, "the token has expired")
    r = _call(world, "GET", "/endpoints/{name}", "revoked")
    assert (r.status_code, r.json()["detail"]) == (401, "the token is unknown or was revoked")

    r = _call(world, "PATCH", "/endpoints/{name}", "read")
    assert r.status_code == 403
    assert r.json()["title"] == "Forbidden"
    assert r.json()["detail"].startswith("token 'reader' (")
    assert r.json()["detail"].endswith("lacks scope 'deploy' on project 'default'")

    r = _call(world, "GET", "/tokens", "deploy")
    assert r.status_code == 403
    assert "lacks scope 'admin'" in r.json()["detail"]


def test_a_token_of_another_project_reads_its_own(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['other']}"}
    r = world.client.get("/api/v1/endpoints", params={"project": "team"}, headers=headers)
    assert r.status_code == 200, r.text
    r = world.client.get("/api/v1/endpoints", params={"project": "default"}, headers=headers)
    assert r.status_code == 403
    assert "on project 'default'" in r.json()["detail"]
    headers = {"Authorization": f"Bearer {world.tokens['read']}"}
    r = world.client.get("/api/v1/endpoints", params={"project": "team"}, headers=headers)
    assert r.status_code == 403
    r = world.client.post(
        "/api/v1/endpoints", json=spec(project="team"), headers={"Authorization": ""}
    )
    assert r.status_code == 401
    deployer = {"Authorization": f"Bearer {world.tokens['deploy']}"}
    r = world.client.post("/api/v1/endpoints", json=spec(project="team"), headers=deployer)
    assert r.status_code == 403  # the project of the body is the one checked
    assert "on project 'team'" in r.json()["detail"]


def test_an_admin_bound_to_projects_cannot_touch_projects_or_quotas(world: World) -> None:
    """Projects and their quotas are the all-projects admin's: an admin of `team` sees
    only `team` in the list and may not create projects nor lift its own quotas."""
    admin = {"Authorization": f"Bearer {world.tokens['admin']}"}
    r = world.client.post("/api/v1/projects", json={"name": "team"}, headers=admin)
    assert r.status_code in (201, 409), r.text
    bound = {"Authorization": f"Bearer {world.tokens['team-admin']}"}
    r = world.client.get("/api/v1/projects", headers=bound)
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()] == ["team"]
    r = world.client.patch(
        "/api/v1/projects/team", json={"quotas": {"max_endpoints": None}}, headers=bound
    )
    assert r.status_code == 403, r.text
    assert r.json()["detail"].endswith("lacks scope 'admin' on every project")
    r = world.client.post("/api/v1/projects", json={"name": "mine"}, headers=bound)
    assert r.status_code == 403, r.text
    r = world.client.delete("/api/v1/projects/team", headers=bound)
    assert r.status_code == 403, r.text
    assert world.client.get("/api/v1/projects/team", headers=admin).status_code == 200


def test_every_route_declares_what_it_needs(world: World) -> None:
    """Each route of the app carries a `needs(...)`, `AUTHENTICATED` or `PUBLIC`
    dependency (api/access.py), so none is open by omission."""
    app = world.client.app
    assert isinstance(app, FastAPI)
    seen = {(m, path.removeprefix("/api/v1")) for ms, path, _ in routes(app) for m in ms}
    assert seen == set(world.paths)  # every operation of the document, nothing else
    bare = [
        f"{sorted(methods)} {path}"
        for methods, path, marks in routes(app)
        if all(m is False for m in marks)
    ]
    assert bare == []


def test_invalid_project_is_a_422_naming_it(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    r = world.client.get("/api/v1/endpoints/x", params={"project": "NO!"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["field"] == "project"
    assert From.QUERY.value == "query"


@pytest.mark.parametrize(
    ("caller", "status"), [("none", 401), ("revoked", 401), ("read", 403), ("admin", 422)]
)
@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe"])
def test_a_malformed_body_is_judged_after_the_caller(
    world: World, caller: str, status: int, body: bytes
) -> None:
    """FastAPI parses the body before any dependency: the refusal still comes first."""
    token = world.tokens[caller]
    headers = {"content-type": "application/json", "Authorization": f"Bearer {token or ''}"}
    r = world.client.post("/api/v1/endpoints", content=body, headers=headers)
    assert r.status_code == status, r.text


@pytest.mark.parametrize(
    ("caller", "status"), [("none", 401), ("revoked", 401), ("read", 403), ("admin", 422)]
)
def test_a_body_nested_too_deep_is_judged_after_the_caller(
    world: World, caller: str, status: int
) -> None:
    """JSON nested deeper than the parser goes (RecursionError) counts as an unparsable
    body: the caller's 401/403 first, then the body's own 4xx, never a 500."""
    token = world.tokens[caller]
    headers = {"content-type": "application/json", "Authorization": f"Bearer {token or ''}"}
    r = world.client.post("/api/v1/endpoints", content=b"[" * 5000, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if status == 422:
        assert r.json()["detail"] == "body: malformed JSON (not UTF-8, or nested too deep)"


def test_the_openapi_document_says_which_operations_need_a_token(world: World) -> None:
    doc = world.client.get("/api/v1/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for (method, path), op in world.paths.items():
        public = MATRIX[(method, path)] is Need.PUBLIC
        assert op["security"] == ([] if public else [{"bearer": []}]), (method, path)
