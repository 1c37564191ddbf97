"""The model files route and the node-side fetch that reads it (`backends.ray_fetch`), over
real HTTP: a node gets exactly the files the version's digest covers, checks the digest
after unpacking, and keeps nothing it could not check."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.backends.ray_fetch import FetchAccess, fetch_repository_model, files_url
from podium.core.access import Scope
from podium.core.errors import LoadError
from tests.unit.api.conftest import make_token, push, tar_gz

FOLDER = {"iris/model.skops": b"weights-1", "iris/sub/config.json": b"{}"}


def test_the_files_route_sends_the_version_as_a_tar_with_its_digest(
    client: TestClient, ctx: ApiContext
) -> None:
    pushed = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz").json()
    r = client.get("/api/v1/models/iris/versions/1/files")
    assert r.status_code == 200, r.text
    assert r.headers["x-podium-sha256"] == pushed["sha256"]
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        assert sorted(tar.getnames()) == ["model.skops", "sub/config.json"]
    tmp = ctx.settings.home / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []  # the tar was deleted once sent
    assert client.get("/api/v1/models/iris/versions/2/files").status_code == 404


def test_a_node_fetches_the_model_into_its_cache_checked_by_digest(
    client: TestClient, ctx: ApiContext, server_url: str, tmp_path: Path
) -> None:
    digest = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz").json()["sha256"]
    reader = make_token(ctx.db, "nodes", (Scope.READ,), projects=None, tokens=ctx.tokens)
    cache = tmp_path / "node-cache"
    folder = fetch_repository_model("iris:1", digest, FetchAccess(server_url, reader), cache)
    assert folder == cache / "models" / digest
    assert (folder / "sub" / "config.json").read_bytes() == b"{}"
    # Once there, it is used as it is (no request: a wrong address would fail).
    assert (
        fetch_repository_model("iris:1", digest, FetchAccess("http://0.0.0.0:1"), cache) == folder
    )


def test_files_that_are_not_the_digest_are_refused_and_not_kept(
    client: TestClient, ctx: ApiContext, server_url: str, tmp_path: Path
) -> None:
    push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz")
    reader = make_token(ctx.db, "nodes", (Scope.READ,), projects=None, tokens=ctx.tokens)
    cache = tmp_path / "node-cache"
    with pytest.raises(LoadError, match="the repository recorded"):
        fetch_repository_model("iris:1", "0" * 64, FetchAccess(server_url, reader), cache)
    assert [p.name for p in (cache / "models").iterdir() if not p.name.startswith(".")] == []


def test_a_fetch_with_a_bad_token_fails_with_the_answer_and_never_shows_the_token(
    client: TestClient, server_url: str, tmp_path: Path
) -> None:
    digest = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz").json()["sha256"]
    wrong = "pod_abcdef012345_notthesecretatall"
    access = FetchAccess(server_url, wrong)
    with pytest.raises(LoadError, match="answered 401") as e:
        fetch_repository_model("iris:1", digest, access, tmp_path / "c")
    assert "notthesecret" not in str(e.value)
    assert "notthesecret" not in repr(access)


def test_the_files_url_names_the_project_of_a_key() -> None:
    assert files_url("http://h:1/", "team.iris:3") == (
        "http://h:1/api/v1/models/iris/versions/3/files?project=team"
    )
    with pytest.raises(LoadError):
        files_url("http://h:1", "hf://org/model")
