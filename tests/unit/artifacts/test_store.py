from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from podium.artifacts.hashing import sha256_tree
from podium.artifacts.store import ArtifactStore, StagedModel
from podium.core.errors import Conflict, Invalid, NotFound, UnsafeArchive

from .archives import make_tar, make_zip, tar_dir, tar_file


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    src = tmp_path / "iris"
    (src / "data").mkdir(parents=True)
    (src / "model.skops").write_bytes(b"skops bytes")
    (src / "data" / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    return src


def _writable_bits(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode) & 0o222


def _staging_leftovers(store: ArtifactStore) -> list[str]:
    return sorted(p.name for p in store.staging_dir.iterdir()) if store.staging_dir.exists() else []


def test_root_is_created_lazily(tmp_path: Path) -> None:
    ArtifactStore(tmp_path / "artifacts")
    assert not (tmp_path / "artifacts").exists()


def test_stage_folder(store: ArtifactStore, model_dir: Path) -> None:
    staged = store.stage(model_dir)
    assert staged.path.parent == store.staging_dir
    assert (staged.path / "data" / "labels.txt").read_text().startswith("setosa")
    assert staged.digest == sha256_tree(model_dir)
    assert staged.digest.files == 2
    assert staged.framework_guess == "sklearn"
    assert (model_dir / "model.skops").exists()  # the source is left alone


def test_stage_single_file_keeps_its_name(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"onnx")
    staged = store.stage(src)
    assert [p.name for p in staged.path.iterdir()] == ["model.onnx"]
    assert staged.digest == sha256_tree(src)
    assert staged.framework_guess == "onnx"


def test_stage_upload_with_its_original_name(store: ArtifactStore, tmp_path: Path) -> None:
    upload = tmp_path / "tmpa8f3k2"  # what a web framework's temp file looks like
    make_zip(upload, [("model.py", b"class Model: ...")])
    staged = store.stage(upload, filename="my-model.zip")
    assert [p.name for p in staged.path.iterdir()] == ["model.py"]
    assert staged.framework_guess == "python"
    single = store.stage(upload, filename="weights.bin")  # not an archive: kept as is
    assert [p.name for p in single.path.iterdir()] == ["weights.bin"]


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "..\\x", "a\0b"])
def test_stage_refuses_bad_upload_names(store: ArtifactStore, tmp_path: Path, bad: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(Invalid) as e:
        store.stage(tmp_path / "f", filename=bad)
    assert e.value.field == "file"


def test_stage_archive_unwraps_a_single_top_folder(store: ArtifactStore, tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "iris.tar.gz",
        [tar_dir("iris"), tar_file("iris/model.skops", b"m"), tar_file("iris/iris/x", b"x")],
    )
    staged = store.stage(archive)
    assert sorted(p.name for p in staged.path.iterdir()) == ["iris", "model.skops"]
    assert (staged.path / "iris" / "x").read_bytes() == b"x"
    assert staged.framework_guess == "sklearn"
    assert staged.digest.files == 2


def test_stage_archive_with_several_top_entries(store: ArtifactStore, tmp_path: Path) -> None:
    config = b'{"model_type": "bert"}'
    archive = make_zip(tmp_path / "m.zip", [("config.json", config), ("d/", b"")])
    staged = store.stage(archive)
    assert sorted(p.name for p in staged.path.iterdir()) == ["config.json", "d"]
    assert staged.framework_guess == "transformers"


def test_stage_unsafe_archive_leaves_nothing(store: ArtifactStore, tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "evil.zip", [("ok", b"ok"), ("../../evil", b"evil")])
    with pytest.raises(UnsafeArchive):
        store.stage(archive)
    assert _staging_leftovers(store) == []


def test_stage_archive_over_the_store_limit(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a", max_bytes=10)
    with pytest.raises(UnsafeArchive, match="over the limit of 10"):
        store.stage(make_zip(tmp_path / "m.zip", [("a", b"x" * 11)]))
    assert _staging_leftovers(store) == []


def test_stage_missing_source(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as e:
        store.stage(tmp_path / "nope")
    assert e.value.field == "path"
    assert not store.root.exists()


def test_stage_folder_with_symlink_is_refused(store: ArtifactStore, model_dir: Path) -> None:
    (model_dir / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(Invalid, match="symbolic link"):
        store.stage(model_dir)
    assert _staging_leftovers(store) == []


def test_stage_empty_folder_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(Invalid, match="no files"):
        store.stage(tmp_path / "empty")
    assert _staging_leftovers(store) == []


def test_commit_makes_a_read_only_version(store: ArtifactStore, model_dir: Path) -> None:
    staged = store.stage(model_dir)
    path = store.commit(staged, "iris", 1)
    assert path == store.root / "models" / "iris" / "1" == store.path_for("iris", 1)
    assert not staged.path.exists()
    assert sha256_tree(path) == staged.digest
    for p in [path, path / "data", path / "model.skops", path / "data" / "labels.txt"]:
        assert _writable_bits(p) == 0, p
    assert _staging_leftovers(store) == []


def test_commit_existing_version_is_a_conflict(store: ArtifactStore, model_dir: Path) -> None:
    store.commit(store.stage(model_dir), "iris", 1)
    again = store.stage(model_dir)
    with pytest.raises(Conflict, match="iris:1 already exists") as e:
        store.commit(again, "iris", 1)
    assert e.value.field == "version"
    assert again.path.is_dir()  # untouched: the caller may commit it elsewhere or discard it
    assert store.commit(again, "iris", 2) == store.path_for("iris", 2)


def test_commit_twice_is_not_found(store: ArtifactStore, model_dir: Path) -> None:
    staged = store.stage(model_dir)
    store.commit(staged, "iris", 1)
    with pytest.raises(NotFound):
        store.commit(staged, "iris", 2)
    assert not store.path_for("iris", 2).exists()


@pytest.mark.parametrize(("name", "version"), [("Iris", 1), ("../x", 1), ("iris", 0)])
def test_bad_names_and_versions(store: ArtifactStore, name: str, version: int) -> None:
    with pytest.raises(Invalid):
        store.path_for(name, version)


def test_commit_refuses_foreign_folders(store: ArtifactStore, model_dir: Path) -> None:
    fake = StagedModel(path=model_dir, digest=sha256_tree(model_dir), framework_guess=None)
    with pytest.raises(Invalid, match="not a staged model"):
        store.commit(fake, "iris", 1)
    with pytest.raises(Invalid, match="not a staged model"):
        store.discard(fake)
    assert model_dir.is_dir()


def test_discard(store: ArtifactStore, model_dir: Path) -> None:
    staged = store.stage(model_dir)
    store.discard(staged)
    assert not staged.path.exists()
    store.discard(staged)  # already gone: fine
    assert _staging_leftovers(store) == []


def test_remove(store: ArtifactStore, model_dir: Path) -> None:
    store.commit(store.stage(model_dir), "iris", 1)
    store.commit(store.stage(model_dir), "iris", 2)
    store.remove("iris", 1)
    assert not store.path_for("iris", 1).exists()
    assert store.locate("iris", 2).is_dir()
    store.remove("iris", 1)  # already removed: fine
    store.remove("iris", 2)
    assert not (store.models_dir / "iris").exists()  # the empty model folder goes too
    assert _staging_leftovers(store) == []


def test_remove_never_committed(store: ArtifactStore) -> None:
    store.remove("iris", 7)
    assert not store.root.exists()


def test_locate_missing(store: ArtifactStore) -> None:
    with pytest.raises(NotFound, match="iris:3") as e:
        store.locate("iris", 3)
    assert e.value.field == "model"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_committed_files_cannot_be_changed(store: ArtifactStore, model_dir: Path) -> None:
    path = store.commit(store.stage(model_dir), "iris", 1)
    with pytest.raises(PermissionError):
        (path / "model.skops").write_bytes(b"tampered")
    with pytest.raises(PermissionError):
        (path / "new").write_bytes(b"x")
    store.remove("iris", 1)
    assert not path.exists()
