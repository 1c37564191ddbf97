"""An `s3://` endpoint names its own S3 keys: the server lends its own AWS credentials only
where the operator opted in (PODIUM_S3_SERVER_CREDENTIALS). Otherwise any deployer could
read any bucket the server can (review-a 7). Over the real API: create, update and apply."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.core.settings import DownloadSettings, Settings
from tests.unit.api.conftest import spec

EP = "/api/v1/endpoints"
KEYS = {"access_key_secret": "s3-id", "secret_key_secret": "s3-key"}
FIELD = "model_source.access_key_secret"


def _refused(r: Any) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"].endswith(FIELD), body  # apply: documents[0].model_source…
    assert "PODIUM_S3_SERVER_CREDENTIALS is off" in body["detail"]


def _secrets(client: TestClient) -> None:
    for name in ("s3-id", "s3-key"):
        r = client.put(f"/api/v1/secrets/{name}", json={"value": f"{name}-value"})
        assert r.status_code in (200, 201), r.text


def test_an_s3_model_without_keys_is_refused_naming_the_field(client: TestClient) -> None:
    _refused(client.post(EP, json=spec("iris-s3", "s3://models/iris")))
    _refused(client.post(EP, json=spec("iris-s3", "s3://models/iris", model_source={})))
    assert client.get(f"{EP}/iris-s3").status_code == 404  # nothing written
    plan = client.post("/api/v1/apply", json={"documents": [spec("iris-s3", "s3://models/iris")]})
    _refused(plan)

    _secrets(client)
    with_keys = spec("iris-s3", "s3://models/iris", model_source=KEYS)
    assert client.post(EP, json=with_keys).status_code == 201
    # an update that drops the keys is refused too
    _refused(client.patch(f"{EP}/iris-s3", json={"model_source": None}))


@pytest.fixture
def lending(ctx: ApiContext, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    """The API of a server whose operator set PODIUM_S3_SERVER_CREDENTIALS=1."""
    settings = dataclasses.replace(
        ctx.settings, download=DownloadSettings(s3_server_credentials=True)
    )
    with TestClient(
        create_api(dataclasses.replace(ctx, settings=settings)), headers=admin_headers
    ) as c:
        yield c


def test_with_the_operators_opt_in_the_server_credentials_serve(lending: TestClient) -> None:
    r = lending.post(EP, json=spec("iris-s3", "s3://models/iris"))
    assert r.status_code == 201, r.text


def test_the_opt_in_is_read_from_the_environment() -> None:
    assert not Settings.from_env({}).download.s3_server_credentials
    on = Settings.from_env({"PODIUM_S3_SERVER_CREDENTIALS": "1"})
    assert on.download.s3_server_credentials
    with pytest.raises(Exception, match="PODIUM_S3_SERVER_CREDENTIALS must be true or false"):
        Settings.from_env({"PODIUM_S3_SERVER_CREDENTIALS": "maybe"})
