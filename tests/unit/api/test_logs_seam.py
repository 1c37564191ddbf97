"""The logs API reads logs only through the backend (`backends.base.ReplicaLogs`).

A backend that keeps its logs somewhere else than this machine's disk (here: in memory, as
a remote backend would fetch them from the replica's node) serves `GET …/logs`, the logs of
exited replicas and `?follow=true` alike, and nothing is read from PODIUM_HOME.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from tests.unit.api.conftest import add_replica, push, spec

LOGS = "/api/v1/endpoints/iris-ep/logs"


class _Follower:
    def __init__(self, lines: list[str], start: int) -> None:
        self._lines, self._at = lines, start

    def read_new(self) -> list[str]:
        new, self._at = self._lines[self._at :], len(self._lines)
        return new


class MemoryLogs:
    """Replica logs held by the backend itself, not in files."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}  # replica id -> lines, oldest replica first

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        return self.lines.get(replica_id, [])[-tail:] if tail > 0 else []

    def kept_logs(self, endpoint: str) -> list[str]:
        return [rid for rid in self.lines if rid.startswith(f"{endpoint}-")]

    def follow_logs(self, replica_id: str, tail: int | None) -> tuple[list[str], _Follower]:
        lines = self.lines.setdefault(replica_id, [])
        if tail is None:
            return [], _Follower(lines, 0)
        return (lines[-tail:] if tail > 0 else []), _Follower(lines, len(lines))


@pytest.fixture
def memory_logs() -> MemoryLogs:
    return MemoryLogs()


@pytest.fixture
def ctx(ctx: ApiContext, memory_logs: MemoryLogs) -> ApiContext:
    return dataclasses.replace(ctx, logs=memory_logs)


@pytest.fixture
def endpoint(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201


def test_recent_and_exited_logs_come_from_the_backend(
    client: TestClient, endpoint: None, ctx: ApiContext, memory_logs: MemoryLogs
) -> None:
    memory_logs.lines["iris-ep-r1-gone"] = ["loading", "Traceback: boom"]
    memory_logs.lines["iris-ep-r1-live"] = ["one", "two", "three"]
    add_replica(ctx.db, "iris-ep", "iris-ep-r1-live")
    body = client.get(LOGS, params={"tail": 2}).json()
    assert body["replicas"] == [
        {"replica_id": "iris-ep-r1-gone", "state": "exited"},
        {"replica_id": "iris-ep-r1-live", "state": "ready"},
    ]
    assert [(i["replica_id"], i["line"]) for i in body["items"]] == [
        ("iris-ep-r1-gone", "loading"),
        ("iris-ep-r1-gone", "Traceback: boom"),
        ("iris-ep-r1-live", "two"),
        ("iris-ep-r1-live", "three"),
    ]
    assert not ctx.settings.logs_dir.exists()  # no file was involved


def test_follow_goes_through_the_backend(
    endpoint: None,
    ctx: ApiContext,
    memory_logs: MemoryLogs,
    server_url: str,
    admin_headers: dict[str, str],
) -> None:
    memory_logs.lines["iris-ep-r1-live"] = ["one", "two"]
    add_replica(ctx.db, "iris-ep", "iris-ep-r1-live")
    params = {"follow": "true", "tail": "1"}
    with (
        httpx.Client(base_url=server_url, timeout=30, headers=admin_headers) as http,
        http.stream("GET", LOGS, params=params) as r,
    ):
        lines = r.iter_lines()
        assert next(lines) == "[iris-ep-r1-live] two"
        memory_logs.lines["iris-ep-r1-live"].append("three")
        assert next(lines) == "[iris-ep-r1-live] three"
        memory_logs.lines["iris-ep-r2-new"] = ["first words"]  # a replica that appears
        add_replica(ctx.db, "iris-ep", "iris-ep-r2-new")
        assert next(lines) == "[iris-ep-r2-new] first words"
