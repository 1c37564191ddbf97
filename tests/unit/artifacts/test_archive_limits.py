"""Archive bombs: unpacked bytes, entry count and compression ratio are limited, checked
while the archive is read and written, and a refused archive leaves nothing on disk."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from podium.artifacts.unpack import safe_extract
from podium.core.errors import Invalid, UnsafeArchive
from podium.core.settings import ArchiveLimits, Settings

from .archives import make_tar, make_zip, tar_file

MIB = 1024 * 1024


@pytest.fixture
def out(tmp_path: Path) -> Path:
    parent = tmp_path / "out"
    parent.mkdir()
    return parent


def _refused(archive: Path, out: Path, match: str, limits: ArchiveLimits | None = None) -> None:
    dest = out / "model"
    with pytest.raises(UnsafeArchive, match=match) as e:
        if limits is None:
            safe_extract(archive, dest)
        else:
            safe_extract(archive, dest, limits=limits)
    assert e.value.field == "archive"
    assert not dest.exists()
    assert list(out.iterdir()) == []  # nothing written, not even a temp folder


def _zeros_zip(path: Path, size: int) -> Path:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("weights.bin", "w", force_zip64=True) as f,
    ):
        for _ in range(size // MIB):
            f.write(bytes(MIB))
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def _zeros_tgz(path: Path, size: int, then: tuple[tuple[str, bytes], ...] = ()) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=9) as tf:
        info = tarfile.TarInfo("weights.bin")
        info.size = size
        tf.addfile(info, io.BufferedReader(_Zeros(size), buffer_size=MIB))
        for name, data in then:
            extra = tarfile.TarInfo(name)
            extra.size = len(data)
            tf.addfile(extra, io.BytesIO(data))
    return path


# ---------------------------------------------------------------- realistic, default limits


def test_a_1mb_zip_of_zeros_is_refused_by_the_default_ratio(tmp_path: Path, out: Path) -> None:
    archive = _zeros_zip(tmp_path / "zeros.zip", 1024 * MIB)  # 1 GiB of zeros
    assert archive.stat().st_size < 2 * MIB
    _refused(archive, out, "compression ratio limit of 100 .PODIUM_ARCHIVE_MAX_RATIO.")


def test_a_tar_gz_of_zeros_is_refused_by_the_default_ratio(tmp_path: Path, out: Path) -> None:
    archive = _zeros_tgz(tmp_path / "zeros.tar.gz", 256 * MIB)
    assert archive.stat().st_size < MIB
    _refused(archive, out, "PODIUM_ARCHIVE_MAX_RATIO")


def test_20000_files_are_refused_by_default(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", [(f"f{i}", b"") for i in range(20_000)])
    _refused(archive, out, "more than 10000 entries .PODIUM_ARCHIVE_MAX_FILES.")


def test_a_tar_bomb_is_refused_before_it_is_read_to_the_end(tmp_path: Path, out: Path) -> None:
    """The stream is cut short after the bomb's header: refusing it on its declared size
    means the damage further on is never reached (read to the end, it is 'corrupt')."""
    whole = _zeros_tgz(tmp_path / "whole.tar.gz", 64 * MIB, then=(("tail.txt", b"t" * 4096),))
    raw = gzip.decompress(whole.read_bytes())
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(gzip.compress(raw[: 512 + 32 * MIB], compresslevel=1))
    limits = ArchiveLimits(max_ratio=10, ratio_free_bytes=MIB)
    _refused(cut, out, "compression ratio", limits)


# ---------------------------------------------------------------- lowered limits


def test_ratio_limit_counts_past_the_free_allowance(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "z.zip", [("zeros", bytes(200_000))])
    limits = ArchiveLimits(max_ratio=5, ratio_free_bytes=100_000)
    _refused(archive, out, "compression ratio limit of 5", limits)
    generous = ArchiveLimits(max_ratio=5, ratio_free_bytes=300_000)
    safe_extract(archive, out / "model", limits=generous)
    assert (out / "model" / "zeros").stat().st_size == 200_000


def test_total_bytes_limit_over_many_files(tmp_path: Path, out: Path) -> None:
    members = [tar_file(f"part-{i}", bytes(range(256)) * 4) for i in range(10)]  # 10 KiB
    archive = make_tar(tmp_path / "parts.tar.gz", members)
    _refused(archive, out, "over the limit of 5000 bytes", ArchiveLimits(max_bytes=5000))


def test_ordinary_archives_pass_the_defaults(tmp_path: Path, out: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, compresses well but not absurdly
    archive = make_tar(tmp_path / "m.tgz", [tar_file("model.bin", data), tar_file("c.json", b"{}")])
    safe_extract(archive, out / "model")
    assert (out / "model" / "model.bin").read_bytes() == data


def test_damaged_archive_is_still_invalid_not_unsafe(tmp_path: Path, out: Path) -> None:
    archive = tmp_path / "junk.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar" * 100))
    with pytest.raises(Invalid):
        safe_extract(archive, out / "model")
    assert list(out.iterdir()) == []


def test_limits_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "PODIUM_HOME": str(tmp_path),
        "PODIUM_ARCHIVE_MAX_BYTES": "1000",
        "PODIUM_ARCHIVE_MAX_FILES": "7",
        "PODIUM_ARCHIVE_MAX_RATIO": "2.5",
    }
    limits = Settings.from_env(env).limits.archive
    assert (limits.max_bytes, limits.max_entries, limits.max_ratio) == (1000, 7, 2.5)
    with pytest.raises(Invalid, match="PODIUM_ARCHIVE_MAX_RATIO"):
        Settings.from_env({**env, "PODIUM_ARCHIVE_MAX_RATIO": "0"})
