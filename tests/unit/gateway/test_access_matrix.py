"""The gateway's auth matrix: every route, every kind of caller, protected and public.

Real gateway (uvicorn, `AccessStage` on a real `TokenDirectory`) in front of a real
stand-in replica. `CASES` must name every pattern of `podium.gateway.app.ROUTES`: a route
added to the gateway without an entry here fails `test_every_gateway_route_is_in_the_matrix`.

Endpoints: `prot` (protected) and `pub` (public) in project `team` and in `default`.
Callers: no token; tokens with read, invoke, deploy, admin on `default` and `team` (admin:
every project); an expired and a revoked invoke token; an invoke token of project `other`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from podium.core.access import Scope, TokenDirectory, Visibility
from podium.gateway.access import AccessStage
from podium.gateway.app import ROUTES
from podium.gateway.task_store import DatabaseTaskStore
from podium.store import Database
from tests.unit.gateway.access_kit import bearer, route, token
from tests.unit.gateway.conftest import RunningGateway, Servers

CALLERS = ("none", "read", "invoke", "deploy", "admin", "expired", "revoked", "other")
MAY_INVOKE = {"invoke", "admin"}
BAD = {"expired", "revoked"}


@dataclass(frozen=True)
class Case:
    """How to call one route for an endpoint (`prot` or `pub`) of project `team`."""

    method: str
    url: Callable[[str], str]
    body: Callable[[str], bytes | None] = lambda name: None
    listing: bool = False  # /v1/models…: 404 (not shown) instead of 401/403 for a caller
    ok: int = 200  # what an allowed caller gets (an async call: 202, the task is queued)


def _chat(model: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()


def _openai(path: str, bare: bool = False) -> Case:
    return Case("POST", lambda name: path, lambda name: _chat(name if bare else f"team/{name}"))


CASES: dict[str, list[Case]] = {
    "/endpoints/{name}/{path}": [
        Case("POST", lambda name: f"/endpoints/{name}/predict", lambda name: b"{}"),
        # V2 (Open Inference Protocol) paths go through the same route
        Case("POST", lambda name: f"/endpoints/{name}/v2/models/{name}/infer", lambda n: b"{}"),
        Case("GET", lambda name: f"/endpoints/{name}/v2/models/{name}"),
    ],
    "/p/{project}/endpoints/{name}/{path}": [
        Case("POST", lambda name: f"/p/team/endpoints/{name}/predict", lambda name: b"{}"),
        Case("GET", lambda name: f"/p/team/endpoints/{name}/v2/health/ready"),
    ],
    "/endpoints/{name}/async/{path}": [
        Case("POST", lambda name: f"/endpoints/{name}/async/predict", lambda n: b"{}", ok=202),
    ],
    "/p/{project}/endpoints/{name}/async/{path}": [
        Case("POST", lambda n: f"/p/team/endpoints/{n}/async/predict", lambda n: b"{}", ok=202),
    ],
    "/v1/chat/completions": [
        _openai("/v1/chat/completions"),
        _openai("/v1/chat/completions", bare=True),
    ],
    "/v1/completions": [_openai("/v1/completions")],
    "/v1/embeddings": [_openai("/v1/embeddings")],
    "/v1/models": [Case("GET", lambda name: "/v1/models", listing=True)],
    "/v1/models/{model}": [
        Case("GET", lambda name: f"/v1/models/team/{name}", listing=True),
        Case("GET", lambda name: f"/v1/models/{name}", listing=True),
    ],
}


def expected(case: Case, caller: str, visibility: Visibility) -> int:
    if case.listing:
        if caller in BAD:
            return 401  # a bad token is refused, even for the list
        if case.url("x") == "/v1/models":
            return 200
        shown = visibility is Visibility.PUBLIC or caller in MAY_INVOKE
        return 200 if shown else 404
    if visibility is Visibility.PUBLIC:
        return case.ok  # no token needed, and none is looked at
    if caller == "none" or caller in BAD:
        return 401
    return case.ok if caller in MAY_INVOKE else 403


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningGateway, dict[str, str | None]]]:
    servers = Servers("http1")
    (replica,) = servers.replicas(1)
    directory = TokenDirectory()
    both = ("default", "team")
    tokens: dict[str, str | None] = {
        "none": None,
        "read": token(directory, "r", [Scope.READ], both)[0],
        "invoke": token(directory, "i", [Scope.INVOKE], both)[0],
        "deploy": token(directory, "d", [Scope.DEPLOY], both)[0],
        "admin": token(directory, "a", [Scope.ADMIN], None)[0],
        "expired": token(directory, "x", [Scope.INVOKE], both, expires_at=time.time() - 1)[0],
        "other": token(directory, "o", [Scope.INVOKE], ["other"])[0],
    }
    revoked, revoked_id = token(directory, "gone", [Scope.INVOKE], both)
    directory.drop(revoked_id)
    tokens["revoked"] = revoked
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('matrix')}/tasks.db")
    db.migrate()
    running = servers.gateway(
        stages=[AccessStage(directory, auth=True)], tasks=DatabaseTaskStore(db)
    )
    r = replica.route
    running.publish(
        route("team", "prot", r),
        route("team", "pub", r, Visibility.PUBLIC),
        route("default", "prot", r),
        route("default", "pub", r, Visibility.PUBLIC),
    )
    yield running, tokens
    servers.close()
    db.dispose()


def test_every_gateway_route_is_in_the_matrix() -> None:
    assert set(CASES) == set(ROUTES)
    assert all(CASES.values())


@pytest.mark.parametrize("visibility", list(Visibility))
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("pattern", list(CASES))
def test_matrix(
    matrix: tuple[RunningGateway, dict[str, str | None]],
    pattern: str,
    caller: str,
    visibility: Visibility,
) -> None:
    gateway, tokens = matrix
    name = "pub" if visibility is Visibility.PUBLIC else "prot"
    with gateway.client(headers=bearer(tokens[caller])) as client:
        for case in CASES[pattern]:
            want = expected(case, caller, visibility)
            url = case.url(name)
            r = client.request(case.method, url, content=case.body(name))
            assert r.status_code == want, (case.method, url, caller, r.text)
            _check_answer(r, url, want, name)


def _check_answer(r: httpx.Response, url: str, status: int, name: str) -> None:
    openai = url.startswith("/v1/")
    if status == 202:
        assert r.json()["task_id"].startswith("task_")  # queued; never run here
        return
    if status == 200:
        if url == "/v1/models":
            ids = {m["id"] for m in r.json()["data"]}
            assert "team/pub" in ids and "pub" in ids  # public: listed for everyone
            return
        if not openai:
            assert "authorization" not in dict(r.json()["headers"])  # never forwarded
        return
    if openai:
        error = r.json()["error"]
        kinds = {401: "authentication_error", 403: "permission_error", 404: None}
        if kinds[status]:
            assert error["type"] == kinds[status]
        if status == 401:
            assert error["code"] == "invalid_api_key"
    else:
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == status
        if status == 403:
            assert "lacks scope 'invoke' on project" in problem["detail"]
    if status == 401:
        assert r.headers["www-authenticate"] == 'Bearer realm="podium"'
    if status in (401, 403):
        assert r.headers["x-request-id"]


@pytest.mark.parametrize("caller", ["none", "read", "invoke", "admin", "other"])
def test_the_model_list_shows_what_the_caller_may_invoke(
    matrix: tuple[RunningGateway, dict[str, str | None]], caller: str
) -> None:
    gateway, tokens = matrix
    with gateway.client(headers=bearer(tokens[caller])) as client:
        ids = {m["id"] for m in client.get("/v1/models").json()["data"]}
    public = {"pub", "team/pub"}
    assert ids == (public | {"prot", "team/prot"} if caller in MAY_INVOKE else public)
