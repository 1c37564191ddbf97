from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.artifacts.hashing import TreeDigest, list_files, sha256_tree
from podium.core.errors import Invalid, NotFound


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_folder_digest_is_stable_and_counts(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a", {"model.bin": b"weights", "sub/config.json": b"{}"})
    first = sha256_tree(a)
    assert first == sha256_tree(a)
    assert first.files == 2
    assert first.size_bytes == len(b"weights") + 2
    assert len(first.sha256) == 64


def test_same_files_elsewhere_give_the_same_digest(tmp_path: Path) -> None:
    files = {"b.txt": b"b", "a/x.txt": b"x", "a/y.txt": b"y"}
    a = _tree(tmp_path / "a", files)
    b = _tree(tmp_path / "b", dict(reversed(list(files.items()))))
    (b / "empty-folder").mkdir()  # folders without files are not part of a model
    os.chmod(b / "b.txt", 0o600)  # nor are modes
    assert sha256_tree(a) == sha256_tree(b)


@pytest.mark.parametrize(
    "change",
    [
        {"model.bin": b"weightz"},  # content
        {"model.bin": b"weights", "extra": b""},  # an extra empty file
        {"renamed.bin": b"weights"},  # a name
    ],
)
def test_digest_is_sensitive(tmp_path: Path, change: dict[str, bytes]) -> None:
    base = sha256_tree(_tree(tmp_path / "base", {"model.bin": b"weights"}))
    assert sha256_tree(_tree(tmp_path / "changed", change)) != base


def test_boundary_between_path_and_content_is_unambiguous(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one", {"a": b"bc"})
    two = _tree(tmp_path / "two", {"ab": b"c"})
    assert sha256_tree(one) != sha256_tree(two)


def test_single_file_hashes_like_a_folder_holding_it(tmp_path: Path) -> None:
    folder = _tree(tmp_path / "m", {"model.onnx": b"\x00" * 3_000_000})  # several chunks
    digest = sha256_tree(folder / "model.onnx")
    assert digest == sha256_tree(folder)
    assert digest == TreeDigest(digest.sha256, 3_000_000, 1)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    assert sha256_tree(tmp_path / "e").files == 0


def test_symlink_inside_a_folder_is_refused(tmp_path: Path) -> None:
    folder = _tree(tmp_path / "m", {"model.bin": b"w"})
    (tmp_path / "secret").write_text("s")
    (folder / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(Invalid, match="symbolic link") as e:
        sha256_tree(folder)
    assert e.value.field == "path"


def test_symlinked_folder_inside_is_refused(tmp_path: Path) -> None:
    folder = _tree(tmp_path / "m", {"model.bin": b"w"})
    _tree(tmp_path / "other", {"x": b"x"})
    (folder / "other").symlink_to(tmp_path / "other", target_is_directory=True)
    with pytest.raises(Invalid, match="symbolic link"):
        list_files(folder)


def test_fifo_inside_is_refused(tmp_path: Path) -> None:
    folder = _tree(tmp_path / "m", {"model.bin": b"w"})
    os.mkfifo(folder / "pipe")
    with pytest.raises(Invalid, match="not a regular file"):
        sha256_tree(folder)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as e:
        sha256_tree(tmp_path / "nope")
    assert e.value.field == "path"


def test_list_files_is_sorted_posix(tmp_path: Path) -> None:
    folder = _tree(tmp_path / "m", {"b": b"", "a/z": b"", "a/b/c": b""})
    assert [rel for rel, _ in list_files(folder)] == ["a/b/c", "a/z", "b"]
