from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from tests.unit.api.conftest import add_replica, push, spec, write_log

LOGS = "/api/v1/endpoints/iris-ep/logs"


@pytest.fixture
def endpoint(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201


def _replica(ctx: ApiContext, replica_id: str, text: str) -> Path:
    path = write_log(ctx, "iris-ep", replica_id, text)
    add_replica(ctx.db, "iris-ep", replica_id, log_path=path)
    return path


def test_recent_lines(client: TestClient, endpoint: None, ctx: ApiContext) -> None:
    _replica(ctx, "iris-ep-r1-bbb", "b1\nb2\nb3\n")
    _replica(ctx, "iris-ep-r1-aaa", "a1\na2\n")
    r = client.get(LOGS, params={"tail": 2})
    assert r.status_code == 200
    assert [(i["replica_id"], i["line"]) for i in r.json()["items"]] == [
        ("iris-ep-r1-aaa", "a1"),
        ("iris-ep-r1-aaa", "a2"),
        ("iris-ep-r1-bbb", "b2"),
        ("iris-ep-r1-bbb", "b3"),
    ]
    only = client.get(LOGS, params={"replica": "iris-ep-r1-bbb", "tail": 1}).json()["items"]
    assert only == [{"replica_id": "iris-ep-r1-bbb", "line": "b3"}]
    r = client.get(LOGS, params={"replica": "iris-ep-r1-zzz"})
    assert (r.status_code, r.json()["field"]) == (404, "replica")
    assert client.get("/api/v1/endpoints/nobody/logs").status_code == 404


def test_recent_lines_come_from_the_backend_not_the_stored_path(
    client: TestClient, endpoint: None, ctx: ApiContext, tmp_path: Path
) -> None:
    """The store's log location is the backend's business: the API asks the backend, which
    finds the log of a replica it did not start (a previous server's) where it keeps logs,
    and never opens a path it reads from the store."""
    write_log(ctx, "iris-ep", "iris-ep-r1-ccc", "x\ny\n")
    elsewhere = tmp_path / "not-a-log.txt"
    elsewhere.write_text("secret\n")
    add_replica(ctx.db, "iris-ep", "iris-ep-r1-ccc", log_path=elsewhere)
    add_replica(ctx.db, "iris-ep", "iris-ep-r1-ddd", log_path=elsewhere)  # no log kept
    body = client.get(LOGS).json()
    assert [(i["replica_id"], i["line"]) for i in body["items"]] == [
        ("iris-ep-r1-ccc", "x"),
        ("iris-ep-r1-ccc", "y"),
    ]
    assert [r["replica_id"] for r in body["replicas"]] == ["iris-ep-r1-ccc", "iris-ep-r1-ddd"]


def test_follow_streams_the_tail_then_new_lines(
    endpoint: None, ctx: ApiContext, server_url: str, admin_headers: dict[str, str]
) -> None:
    path = _replica(ctx, "iris-ep-r1-aaa", "one\ntwo\nthree\npart")
    params = {"follow": "true", "tail": "2"}
    with (
        httpx.Client(base_url=server_url, timeout=30, headers=admin_headers) as http,
        http.stream("GET", LOGS, params=params) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        lines = r.iter_lines()
        assert [next(lines), next(lines)] == ["[iris-ep-r1-aaa] two", "[iris-ep-r1-aaa] three"]
        with path.open("a") as f:
            f.write("ial\nfour\n")
        assert [next(lines), next(lines)] == ["[iris-ep-r1-aaa] partial", "[iris-ep-r1-aaa] four"]
        # a replica started while following is picked up, from its first line
        _replica(ctx, "iris-ep-r2-bbb", "hello\n")
        assert next(lines) == "[iris-ep-r2-bbb] hello"
    # the client went away: the server shuts down cleanly (the fixture joins its thread)


def test_follow_first_chunk_of_one_replica(
    endpoint: None, ctx: ApiContext, server_url: str, admin_headers: dict[str, str]
) -> None:
    _replica(ctx, "iris-ep-r1-aaa", "a1\n")
    _replica(ctx, "iris-ep-r1-bbb", "b1\n")
    params = {"follow": "true", "replica": "iris-ep-r1-bbb"}
    with httpx.stream(
        "GET", server_url + LOGS, params=params, timeout=30, headers=admin_headers
    ) as r:
        chunk = next(r.iter_text())
    assert chunk == "[iris-ep-r1-bbb] b1\n"
