"""Request bodies and spec fields are bounded: 413/422 problems naming the limit or field.

Real HTTP over the ASGI app (TestClient), with limits lowered by settings so that the
bodies stay small.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.core.settings import ApiLimits
from podium.core.spec import MAX_SPEC_BYTES
from tests.unit.api.conftest import push, spec

JSON_LIMIT = 4096
UPLOAD_LIMIT = 64 * 1024


@pytest.fixture
def small(ctx: ApiContext, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    """An API whose JSON limit is 4 KiB and whose upload limit is 64 KiB."""
    settings = replace(ctx.settings, limits=ApiLimits(max_json_bytes=JSON_LIMIT))
    small_ctx = replace(ctx, settings=settings, max_upload_bytes=UPLOAD_LIMIT)
    with TestClient(create_api(small_ctx), headers=admin_headers) as c:
        yield c


def _chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    yield b'{"name": "big-ep", "model": "iris", "framework": "sklearn", "labels": {"a": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}}'


def _is_413(r: Any, setting: str) -> None:
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["field"] == "body"
    assert setting in body["detail"]


def test_json_body_over_the_limit_with_content_length(small: TestClient) -> None:
    body = b'{"name": "big-ep", "labels": {"a": "' + b"x" * (JSON_LIMIT * 2) + b'"}}'
    r = small.post("/api/v1/endpoints", content=body, headers={"content-type": "application/json"})
    _is_413(r, "PODIUM_API_MAX_JSON_BYTES")
    assert r.json()["limit"] == JSON_LIMIT


def test_chunked_json_body_over_the_limit(small: TestClient) -> None:
    r = small.post(
        "/api/v1/endpoints",
        content=_chunks(JSON_LIMIT * 4),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    _is_413(r, "PODIUM_API_MAX_JSON_BYTES")
    assert small.get("/api/v1/endpoints").json()["items"] == []


def test_patch_is_limited_too(small: TestClient) -> None:
    body = b'{"labels": {"a": "' + b"x" * (JSON_LIMIT * 2) + b'"}}'
    r = small.patch(
        "/api/v1/endpoints/any-ep", content=body, headers={"content-type": "application/json"}
    )
    _is_413(r, "PODIUM_API_MAX_JSON_BYTES")


def test_uploads_have_their_own_limit(small: TestClient) -> None:
    ok = push(small, "iris", b"w" * (JSON_LIMIT * 4), filename="m.skops")  # over the JSON one
    assert ok.status_code == 201, ok.text
    r = push(small, "iris", b"w" * (UPLOAD_LIMIT + 1), filename="m.skops")
    _is_413(r, "PODIUM_MAX_UPLOAD_BYTES")
    chunked = small.post(
        "/api/v1/models/iris/versions",
        params={"filename": "m.skops", "framework": "sklearn"},
        content=(b"w" * 4096 for _ in range(UPLOAD_LIMIT // 4096 + 2)),
    )
    _is_413(chunked, "PODIUM_MAX_UPLOAD_BYTES")


# ---------------------------------------------------------------- field bounds


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"labels": {"team": "x" * 257}}, "labels.team"),
        ({"labels": {f"k{i}": "v" for i in range(65)}}, "labels"),
        ({"env": {"TOKEN": "x" * (16 * 1024 + 1)}}, "env.TOKEN"),
        ({"env": {f"V{i}": "v" for i in range(257)}}, "env"),
        ({"instance_type": "x" * 65}, "instance_type"),
        ({"task": "x" * 65}, "task"),
        ({"engine_args": {"opt": "x" * 4097}}, "engine_args.opt"),
        ({"model": "hf://org/" + "m" * 600}, "model"),
        ({"model": "iris:99999999999999999999"}, "model"),
        ({"model": "iris:2147483648"}, "model"),
        ({"name": "a" * 200}, "name"),
        ({"scaling": {"rules": [{"metric": "cpu", "target": 50}] * 17}}, "scaling.rules"),
        (
            {"framework": "command", "command": {"command": "x", "args": ["a"] * 257}},
            "command.args",
        ),
        ({"env": {f"V{i}": "v" * 16 * 1024 for i in range(5)}}, "body"),  # the whole spec
    ],
)
def test_fields_are_bounded(client: TestClient, extra: dict[str, Any], field: str) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    r = client.post("/api/v1/endpoints", json=spec(**extra))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == field, r.json()


def test_whole_spec_limit_names_itself(client: TestClient) -> None:
    r = client.post("/api/v1/endpoints", json=spec(env={f"V{i}": "v" * 16000 for i in range(5)}))
    assert r.status_code == 422
    assert f"the limit is {MAX_SPEC_BYTES}" in r.json()["detail"]


def test_huge_version_on_update_is_a_422(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201
    r = client.patch("/api/v1/endpoints/iris-ep", json={"model": "iris:99999999999999999999"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "model"
    assert "2147483647" in r.json()["detail"]


def test_bounds_leave_room_for_real_specs(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    r = client.post(
        "/api/v1/endpoints",
        json=spec(
            model="iris:1",
            labels={f"k{i}": "v" * 256 for i in range(64)},
            env={"HF_TOKEN": "t" * 4000, "OMP_NUM_THREADS": "1"},
        ),
    )
    assert r.status_code == 201, r.text
