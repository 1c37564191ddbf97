from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

import podium


def test_health(client: TestClient) -> None:
    r = client.get("/api/v1/health")
    assert r.json() == {"status": "ok", "version": podium.__version__, "database": "sqlite"}


def test_instance_types(client: TestClient) -> None:
    names = [t["name"] for t in client.get("/api/v1/instance-types").json()]
    assert "cpu-small" in names


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/endpoints/{name}/scale" in schema["paths"]
    not_found = schema["paths"]["/api/v1/endpoints/{name}"]["get"]["responses"]["404"]
    assert "application/problem+json" in not_found["content"]
    assert client.get("/api/v1/docs").status_code == 200


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Not Found"
    r = client.put("/api/v1/health")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"
    assert "GET" in r.headers["allow"]


def test_unexpected_error_is_a_500_without_traceback(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/v1/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "internal error",
    }
    assert "secret" not in r.text
