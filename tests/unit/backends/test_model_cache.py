"""The local backend finds a replica's model itself, from the reference it is given: a
repository model's folder must hold what the store's digest says, an `hf://` model is read
from the node cache when the Hub is offline. Real files, real hashing; the local backend's
`start` refuses a model that is not what it should be before launching anything."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from podium.artifacts.hashing import sha256_tree
from podium.artifacts.sources import NodeCache
from podium.backends.base import ModelSource, Readiness
from podium.backends.model_cache import ModelCache
from podium.core.errors import LoadError, Unavailable
from podium.core.settings import DownloadSettings, Settings
from tests.support.s3_store import running_s3, slow_proxy
from tests.unit.backends.conftest import SyncLocal, launch


def _model(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "models" / "iris" / "3"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text("x = 1\n")
    return folder, sha256_tree(folder).sha256


def _cache(tmp_path: Path, **env: str) -> ModelCache:
    return ModelCache(NodeCache(tmp_path / "cache", env=env), DownloadSettings())


def test_a_repository_model_is_ready_at_once_and_its_folder_checked(tmp_path: Path) -> None:
    folder, digest = _model(tmp_path)
    models = _cache(tmp_path)
    model = ModelSource(ref="iris:3", digest=digest, location=str(folder))
    assert models.prepare(model).state is Readiness.READY
    assert models.path(model) == folder


def test_a_repository_model_whose_files_changed_cannot_start(tmp_path: Path) -> None:
    folder, digest = _model(tmp_path)
    (folder / "model.py").write_text("x = 2\n")  # same size, other bytes
    models = _cache(tmp_path)
    with pytest.raises(LoadError, match="does not match its digest"):
        models.path(ModelSource(ref="iris:3", digest=digest, location=str(folder)))
    with pytest.raises(LoadError, match="has no files here"):
        models.path(ModelSource(ref="iris:3", digest=digest, location=str(tmp_path / "gone")))


def test_a_checked_folder_is_not_hashed_again(tmp_path: Path) -> None:
    """Once per server process (the store's folders are read-only): a change made behind
    its back after the first check is not looked for by every start."""
    folder, digest = _model(tmp_path)
    models = _cache(tmp_path)
    model = ModelSource(ref="iris:3", digest=digest, location=str(folder))
    assert models.path(model) == folder
    (folder / "model.py").write_text("x = 2\n")
    assert models.path(model) == folder
    other = _cache(tmp_path)  # a new server process checks again
    with pytest.raises(LoadError, match="does not match its digest"):
        other.path(model)


def test_an_hf_model_offline_is_read_from_the_cache_only(tmp_path: Path) -> None:
    models = _cache(tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    model = ModelSource(ref="hf://acme/absent")
    assert models.prepare(model).state is Readiness.READY  # nothing to fetch offline
    with pytest.raises(LoadError):
        models.path(model)


def test_an_hf_model_not_fetched_yet_is_not_started(tmp_path: Path) -> None:
    """Online, a start before `prepare` said ready is a transient failure, not a load
    error: the controller retries it after `prepare`."""
    models = _cache(tmp_path, HF_HOME=str(tmp_path / "hf"))
    with pytest.raises(Unavailable, match="not on this node yet"):
        models.path(ModelSource(ref="hf://acme/echo"))


def test_the_backend_starts_nothing_for_a_model_that_is_not_what_it_should_be(
    tmp_path: Path, settings: Settings
) -> None:
    folder, digest = _model(tmp_path)
    (folder / "extra.txt").write_text("not uploaded\n")
    backend = SyncLocal(settings)
    try:
        bad = replace(launch("iris-r1-a", folder), model=ModelSource("iris:3", digest, str(folder)))
        with pytest.raises(LoadError, match="does not match its digest"):
            backend.start(bad)
        assert backend.poll() == []
        assert backend.logs("iris-r1-a") == []
    finally:
        backend.close()


def test_an_s3_model_is_fetched_with_progress_then_served_from_the_cache(tmp_path: Path) -> None:
    """Through a slow link to a real S3 server: FETCHING with bytes done of the total, then
    READY with the pinned reference; the replicas' folder holds the objects. Wrong keys are
    a FAILED preparation whose reason holds no secret."""
    size = 600 * 1024
    with running_s3(tmp_path / "moto") as store, slow_proxy(store.url, 200 * 1024) as slow:
        client = store.client()
        client.create_bucket(Bucket="models")
        client.put_object(Bucket="models", Key="big/weights.bin", Body=b"w" * size)
        models = _cache(tmp_path, PODIUM_S3_ENDPOINT_URL=slow)
        keys = (store.access_key_id, store.secret_access_key)
        model = ModelSource(ref="s3://models/big", s3_keys=keys)
        assert store.secret_access_key not in repr(model)
        seen: list[tuple[int, int | None]] = []
        deadline = time.monotonic() + 120
        while (prep := models.prepare(model)).state is Readiness.FETCHING:
            assert prep.label == "s3://models/big" and prep.origin == slow
            seen.append((prep.bytes_done, prep.bytes_total))
            assert time.monotonic() < deadline, seen[-5:]
            time.sleep(0.2)
        assert prep.state is Readiness.READY, prep.reason
        assert prep.resolved and prep.resolved.startswith("s3://models/big@")
        assert prep.bytes_done == size
        assert any(0 < done < size and total == size for done, total in seen), seen[::10]
        folder = models.path(model)
        assert (folder / "weights.bin").stat().st_size == size

        wrong = ModelSource(ref="s3://models/big", s3_keys=(store.access_key_id, "nope-S3cret"))
        deadline = time.monotonic() + 120
        while (prep := models.prepare(wrong)).state is Readiness.FETCHING:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert prep.state is Readiness.FAILED and prep.reason
        assert "refused the credentials" in prep.reason and "nope-S3cret" not in prep.reason
        models.cancel_all()
