from __future__ import annotations

import io
import tarfile
from pathlib import Path

from fastapi.testclient import TestClient

from podium.api import ApiContext
from tests.unit.api.conftest import push, spec, tar_gz, zip_bytes


def _no_temp_files(ctx: ApiContext) -> bool:
    tmp = ctx.settings.home / "tmp"
    return not tmp.exists() or not any(tmp.iterdir())


FOLDER = {"iris/model.skops": b"weights-1", "iris/config.json": b"{}"}


def test_push_folder_tarball(client: TestClient, ctx: ApiContext) -> None:
    r = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["ref"] == "iris:1"
    assert body["framework"] == "sklearn"
    assert body["files"] == 2
    assert body["source"] == "upload:iris.tar.gz"
    assert body["used_by"] == []
    stored = ctx.artifacts.path_for("iris", 1)
    assert sorted(p.name for p in stored.iterdir()) == ["config.json", "model.skops"]
    assert _no_temp_files(ctx)  # temp files cleaned


def test_push_single_file_and_zip_increment_versions(client: TestClient, ctx: ApiContext) -> None:
    r1 = push(client, "clf", b"one file", filename="model.skops")
    r2 = push(client, "clf", zip_bytes({"a.txt": b"a", "b/c.txt": b"c"}), filename="m.zip")
    assert (r1.status_code, r2.status_code) == (201, 201), r2.text
    assert (r1.json()["version"], r2.json()["version"]) == (1, 2)
    assert (ctx.artifacts.path_for("clf", 1) / "model.skops").read_bytes() == b"one file"
    assert (ctx.artifacts.path_for("clf", 2) / "b" / "c.txt").read_bytes() == b"c"
    listing = client.get("/api/v1/models").json()
    assert [(m["name"], m["latest"], len(m["versions"])) for m in listing] == [("clf", 2, 2)]
    one = client.get("/api/v1/models/clf/versions/1").json()
    assert one["ref"] == "clf:1" and one["size_bytes"] == len(b"one file")


def test_duplicate_of_latest_is_not_stored_again(client: TestClient) -> None:
    first = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz")
    again = push(client, "iris", tar_gz(FOLDER), filename="iris.tar.gz")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["x-podium-duplicate"] == "true"
    assert again.json()["version"] == 1
    assert client.get("/api/v1/models/iris").json()["latest"] == 1


def test_unsafe_archive_is_refused_and_nothing_stored(client: TestClient, ctx: ApiContext) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../evil.sh")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"boom"))
    r = push(client, "iris", buf.getvalue(), filename="evil.tgz")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "../../evil.sh" in r.json()["detail"]
    assert client.get("/api/v1/models").json() == []
    assert not (ctx.artifacts.models_dir / "iris").exists()
    assert _no_temp_files(ctx)


def test_push_checks_name_framework_and_filename(client: TestClient) -> None:
    r = push(client, "Bad_Name", b"x")
    assert (r.status_code, r.json()["field"]) == (422, "name")
    r = push(client, "iris", b"x", framework="nope")
    assert (r.status_code, r.json()["field"]) == (422, "framework")
    r = push(client, "iris", b"x", filename="../x")
    assert (r.status_code, r.json()["field"]) == (422, "filename")
    r = client.post("/api/v1/models/iris/versions", content=b"x")
    assert (r.status_code, r.json()["field"]) == (422, "filename")
    r = push(client, "iris", b"")
    assert (r.status_code, r.json()["field"]) == (422, "body")


def test_upload_over_the_limit_is_413(client: TestClient, ctx: ApiContext) -> None:
    ctx.max_upload_bytes = 10
    r = push(client, "iris", b"x" * 11)
    assert r.status_code == 413
    assert r.json()["field"] == "body"
    assert _no_temp_files(ctx)


def test_upload_without_content_length_over_the_limit_is_413(
    client: TestClient, ctx: ApiContext
) -> None:
    ctx.max_upload_bytes = 10

    def chunks():  # streamed: chunked transfer, no content-length
        yield b"x" * 6
        yield b"x" * 6

    r = client.post("/api/v1/models/iris/versions", params={"filename": "m.bin"}, content=chunks())
    assert r.status_code == 413
    assert _no_temp_files(ctx)


def test_version_in_use_cannot_be_deleted(client: TestClient, ctx: ApiContext) -> None:
    push(client, "iris", b"v1", filename="m.skops")
    push(client, "iris", b"v2", filename="m.skops")
    assert client.post("/api/v1/endpoints", json=spec("web", "iris:1")).status_code == 201

    r = client.delete("/api/v1/models/iris/versions/1")
    assert r.status_code == 409
    assert "web" in r.json()["detail"]
    assert r.json()["field"] == "model"
    assert client.get("/api/v1/models/iris/versions/1").json()["used_by"] == ["web"]
    r = client.delete("/api/v1/models/iris")
    assert r.status_code == 409 and "web" in r.json()["detail"]

    assert client.delete("/api/v1/models/iris/versions/2").status_code == 204
    assert not ctx.artifacts.path_for("iris", 2).exists()
    assert ctx.artifacts.path_for("iris", 1).exists()
    r = client.get("/api/v1/models/iris/versions/2")
    assert (r.status_code, r.json()["field"]) == (404, "model")


def test_delete_whole_model(client: TestClient, ctx: ApiContext) -> None:
    push(client, "iris", b"v1", filename="m.skops")
    push(client, "iris", b"v2", filename="m.skops")
    assert client.delete("/api/v1/models/iris").status_code == 204
    assert client.get("/api/v1/models/iris").status_code == 404
    assert not Path(ctx.artifacts.models_dir, "iris").exists()
    assert client.delete("/api/v1/models/iris").status_code == 404
