"""An archive bomb pushed through the API: a 422 naming the limit, nothing left on disk."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.artifacts.store import ArtifactStore
from podium.core.settings import ArchiveLimits
from tests.unit.api.conftest import push, tar_gz, zip_bytes

LIMITS = ArchiveLimits(max_bytes=300_000, max_entries=50, max_ratio=10, ratio_free_bytes=10_000)


def _deflated(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


_NOISE = random.Random(0).randbytes(64 * 1024)  # does not compress


@pytest.fixture
def strict(ctx: ApiContext, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    store = ArtifactStore(ctx.settings.artifacts_dir, limits=LIMITS)
    with TestClient(create_api(replace(ctx, artifacts=store)), headers=admin_headers) as c:
        yield c


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize(
    "filename, body, setting",
    [
        ("bomb.zip", _deflated({"zeros.bin": bytes(200_000)}), "PODIUM_ARCHIVE_MAX_RATIO"),
        ("bomb.tar.gz", tar_gz({"zeros.bin": bytes(200_000)}), "PODIUM_ARCHIVE_MAX_RATIO"),
        ("many.zip", zip_bytes({f"f{i}": b"x" for i in range(51)}), "PODIUM_ARCHIVE_MAX_FILES"),
        (
            "big.tar.gz",
            tar_gz({f"p{i}": _NOISE for i in range(5)}),
            "PODIUM_ARCHIVE_MAX_BYTES",
        ),
    ],
)
def test_archive_over_a_limit_is_a_422_and_leaves_nothing(
    strict: TestClient, ctx: ApiContext, filename: str, body: bytes, setting: str
) -> None:
    r = push(strict, "bomb", body, filename=filename)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "archive"
    assert setting in r.json()["detail"]
    assert _files_under(ctx.settings.artifacts_dir) == []
    assert _files_under(ctx.settings.home / "tmp") == []
    assert strict.get("/api/v1/models/bomb").status_code == 404


def test_server_settings_reach_the_artifact_store(tmp_path: Path) -> None:
    from podium.core.settings import Settings
    from podium.server.app import Podium

    env = {"PODIUM_HOME": str(tmp_path / "home"), "PODIUM_ARCHIVE_MAX_FILES": "7"}
    settings = Settings.from_env(env)
    podium = Podium(settings)
    try:
        assert podium.artifacts.limits.max_entries == 7
    finally:
        podium.db.dispose()
