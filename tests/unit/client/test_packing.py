from __future__ import annotations

import tarfile
from pathlib import Path

from podium.client._packing import iter_file, pack_folder


def make_model(root: Path) -> Path:
    folder = root / "iris"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "model.skops").write_bytes(b"\x00weights\xff")
    (folder / "sub" / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "deeper" / "vocab.txt").write_text("a\nb\n")
    outside = root / "secret.txt"
    outside.write_text("do not ship")
    (folder / "link.txt").symlink_to(outside)
    (folder / "linked-dir").symlink_to(root)
    return folder


def test_pack_folder_uses_relative_names_and_skips_links(tmp_path: Path) -> None:
    folder = make_model(tmp_path)
    dest = tmp_path / "out.tar.gz"
    names = pack_folder(folder, dest)
    with tarfile.open(dest, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == set(names)
        assert set(members) == {
            "model.skops",
            "sub",
            "sub/config.json",
            "sub/deeper",
            "sub/deeper/vocab.txt",
        }
        assert all(not m.issym() and not m.islnk() for m in members.values())
        weights = tar.extractfile("model.skops")
        assert weights is not None and weights.read() == b"\x00weights\xff"


def test_pack_folder_is_reproducible(tmp_path: Path) -> None:
    folder = make_model(tmp_path)
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    pack_folder(folder, first)
    (folder / "model.skops").touch()  # a new mtime must not change the archive
    pack_folder(folder, second)
    assert first.read_bytes() == second.read_bytes()


def test_iter_file_streams_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 10)
    assert list(iter_file(path, chunk=4)) == [b"xxxx", b"xxxx", b"xx"]
