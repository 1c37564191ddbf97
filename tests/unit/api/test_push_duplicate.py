"""Pushing the bytes of the latest version again says so: 200 and `created: false`."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.unit.api.conftest import push, tar_gz

FOLDER = {"iris/model.skops": b"weights-1", "iris/config.json": b"{}"}


def test_a_push_answers_whether_it_created_a_version(client: TestClient) -> None:
    first = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz")
    again = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz")
    changed = push(client, "iris", tar_gz({**FOLDER, "iris/config.json": b"{1}"}), "iris.tar.gz")

    def answer(r: Any) -> tuple[int, bool, str]:
        return r.status_code, r.json()["created"], r.json()["ref"]

    assert answer(first) == (201, True, "iris:1")
    assert answer(again) == (200, False, "iris:1")
    assert (changed.status_code, changed.json()["created"]) == (201, True)
    assert changed.json()["ref"] == "iris:2"
    assert "created" not in client.get("/api/v1/models/iris/versions/1").json()
