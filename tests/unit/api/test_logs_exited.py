"""Logs of replicas that have exited (no row in the store) are listed and readable."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from tests.unit.api.conftest import add_replica, push, spec, write_log

LOGS = "/api/v1/endpoints/iris-ep/logs"


@pytest.fixture
def endpoint(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201


def test_exited_replicas_come_first_then_running_ones(
    client: TestClient, endpoint: None, ctx: ApiContext
) -> None:
    folder = ctx.settings.logs_dir / "iris-ep"
    folder.mkdir(parents=True)
    for rid, mtime in (("iris-ep-r1-old", 100), ("iris-ep-r1-dead", 200)):
        (folder / f"{rid}.log").write_text(f"{rid} says goodbye\n")
        os.utime(folder / f"{rid}.log", (mtime, mtime))
    running = write_log(ctx, "iris-ep", "iris-ep-r1-live", "serving\n")
    add_replica(ctx.db, "iris-ep", "iris-ep-r1-live", log_path=running)

    body = client.get(LOGS).json()
    assert body["replicas"] == [
        {"replica_id": "iris-ep-r1-old", "state": "exited"},
        {"replica_id": "iris-ep-r1-dead", "state": "exited"},
        {"replica_id": "iris-ep-r1-live", "state": "ready"},
    ]
    assert [i["line"] for i in body["items"]] == [
        "iris-ep-r1-old says goodbye",
        "iris-ep-r1-dead says goodbye",
        "serving",
    ]
    only = client.get(LOGS, params={"replica": "iris-ep-r1-dead"}).json()
    assert only["items"] == [
        {"replica_id": "iris-ep-r1-dead", "line": "iris-ep-r1-dead says goodbye"}
    ]
    assert client.get(LOGS, params={"replica": "iris-ep-r1-nope"}).status_code == 404
