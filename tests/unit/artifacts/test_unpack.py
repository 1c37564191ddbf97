from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from podium.artifacts.unpack import is_archive, safe_extract
from podium.core.errors import Conflict, Invalid, UnsafeArchive

from .archives import make_tar, make_zip, tar_dir, tar_file, tar_special


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty parent folder: after a refusal it must still be empty."""
    parent = tmp_path / "out"
    parent.mkdir()
    return parent


def _refused(archive: Path, out: Path, match: str, **limits: int) -> UnsafeArchive:
    dest = out / "model"
    with pytest.raises(UnsafeArchive, match=match) as e:
        safe_extract(archive, dest, **limits)
    assert e.value.field == "archive"
    assert archive.name in e.value.message
    assert not dest.exists()
    assert list(out.iterdir()) == []  # nothing written, not even a temp folder
    return e.value


@pytest.mark.parametrize(
    "name",
    ["model.zip", "m.tar", "m.tar.gz", "m.TGZ", "m.tar.bz2", "m.tar.xz"],
)
def test_is_archive(name: str) -> None:
    assert is_archive(Path(name))


@pytest.mark.parametrize("name", ["model.onnx", "model.gz", "tar", "m.tar.zst", "zip"])
def test_is_not_archive(name: str) -> None:
    assert not is_archive(Path(name))


# ---------------------------------------------------------------- good archives


def test_zip_unpacks(tmp_path: Path, out: Path) -> None:
    archive = make_zip(
        tmp_path / "m.zip",
        [("model/", b""), ("model/config.json", b"{}"), ("weights.bin", b"w" * 1000)],
    )
    safe_extract(archive, out / "model")
    assert (out / "model" / "model" / "config.json").read_bytes() == b"{}"
    assert (out / "model" / "weights.bin").read_bytes() == b"w" * 1000
    assert [p.name for p in out.iterdir()] == ["model"]  # no temp folder left


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_unpacks(tmp_path: Path, out: Path, mode: str) -> None:
    archive = make_tar(
        tmp_path / "m.tar",  # the suffix says tar; the compression is detected
        [
            tar_dir("."),  # what `tar -C dir .` writes
            tar_dir("./sub"),
            tar_file("./sub/a.txt", b"a"),
            tar_file("b.txt", b"b" * 5000),
        ],
        mode,
    )
    safe_extract(archive, out / "model")
    assert (out / "model" / "sub" / "a.txt").read_bytes() == b"a"
    assert (out / "model" / "b.txt").read_bytes() == b"b" * 5000
    assert (out / "model" / "b.txt").stat().st_mode & 0o777 == 0o644


def test_into_existing_empty_folder(tmp_path: Path, out: Path) -> None:
    (out / "model").mkdir()
    safe_extract(make_zip(tmp_path / "m.zip", [("a", b"a")]), out / "model")
    assert (out / "model" / "a").read_bytes() == b"a"


def test_into_non_empty_folder_is_a_conflict(tmp_path: Path, out: Path) -> None:
    (out / "model").mkdir()
    (out / "model" / "keep").write_text("k")
    with pytest.raises(Conflict):
        safe_extract(make_zip(tmp_path / "m.zip", [("a", b"a")]), out / "model")
    assert [p.name for p in (out / "model").iterdir()] == ["keep"]


def test_exact_size_limit_is_allowed(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "m.zip", [("a", b"x" * 60), ("b", b"y" * 40)])
    safe_extract(archive, out / "model", max_bytes=100, max_entries=2)
    assert (out / "model" / "b").stat().st_size == 40


# ---------------------------------------------------------------- hostile zips


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil", r"'\.\.' component"),
        ("model/../../evil", r"'\.\.' component"),
        ("/etc/evil", "absolute path"),
        ("//server/share/evil", "absolute path"),
        ("C:/evil", "drive letter"),
        ("C:evil", "drive letter"),
        ("..\\evil", "backslash"),
        ("model\\..\\..\\evil", "backslash"),
        ("evil\x07name", "control characters"),
        ("a/" + "x" * 256, "over 255 bytes"),
    ],
)
def test_zip_bad_names_are_refused(tmp_path: Path, out: Path, name: str, why: str) -> None:
    archive = make_zip(tmp_path / "bad.zip", [("good.txt", b"fine"), (name, b"evil")])
    assert name in zipfile_names(archive)
    error = _refused(archive, out, why)
    assert f"entry {name!r}" in error.message


def zipfile_names(archive: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        return zf.namelist()


def test_zip_symlink_is_refused(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "link.zip", [("link", b"/etc/passwd")], unix_mode=0o120777)
    _refused(archive, out, "symbolic link")


def test_zip_device_is_refused(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "dev.zip", [("dev", b"")], unix_mode=0o020666)
    _refused(archive, out, "device")


def test_zip_duplicate_names_are_refused(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "dup.zip", [("a.txt", b"1"), ("./a.txt", b"2")])
    _refused(archive, out, "more than once")


def test_zip_file_and_folder_of_the_same_name_are_refused(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "clash.zip", [("a", b"1"), ("a/b", b"2")])
    _refused(archive, out, "which is a file")


def test_zip_over_size_limit_is_refused(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "big.zip", [("a", b"x" * 60), ("b", b"y" * 41)])
    _refused(archive, out, "101 bytes uncompressed, over the limit of 100", max_bytes=100)


def test_zip_bomb_ratio_is_caught_by_size_limit(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", [("zeros", b"\0" * 2_000_000)])
    assert archive.stat().st_size < 10_000
    _refused(archive, out, "over the limit", max_bytes=1_000_000)


def test_too_many_entries_are_refused(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", [(f"f{i}", b"") for i in range(6)])
    _refused(archive, out, "more than 5 entries", max_entries=5)


def test_a_bad_entry_after_good_ones_writes_nothing(tmp_path: Path, out: Path) -> None:
    good = [(f"ok/{i}.txt", b"data") for i in range(20)]
    archive = make_zip(tmp_path / "late.zip", [*good, ("../evil", b"evil")])
    _refused(archive, out, "'..' component")
    assert not (tmp_path / "evil").exists()


# ---------------------------------------------------------------- hostile tars


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (tar_file("../evil", b"evil"), r"'\.\.' component"),
        (tar_file("/tmp/evil", b"evil"), "absolute path"),
        (tar_file("C:\\evil", b"evil"), "drive letter"),
        (tar_file("sub\\..\\..\\evil", b"evil"), "backslash"),
        (tar_special("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (tar_special("inner-link", tarfile.SYMTYPE, "good.txt"), "symbolic link"),
        (tar_special("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
        (tar_special("hard2", tarfile.LNKTYPE, "good.txt"), "hard link"),
        (tar_special("tty", tarfile.CHRTYPE), "device"),
        (tar_special("disk", tarfile.BLKTYPE), "device"),
        (tar_special("pipe", tarfile.FIFOTYPE), "fifo"),
        (tar_file("good.txt", b"again"), "more than once"),
    ],
)
def test_tar_bad_members_are_refused(
    tmp_path: Path, out: Path, member: tuple[tarfile.TarInfo, bytes | None], why: str
) -> None:
    archive = make_tar(tmp_path / "bad.tar.gz", [tar_file("good.txt", b"fine"), member])
    _refused(archive, out, why)


def test_tar_over_size_limit_is_refused(tmp_path: Path, out: Path) -> None:
    archive = make_tar(tmp_path / "big.tgz", [tar_file("a", b"x" * 1001)])
    _refused(archive, out, "over the limit of 1000", max_bytes=1000)


def test_tar_too_many_entries(tmp_path: Path, out: Path) -> None:
    archive = make_tar(tmp_path / "many.tar", [tar_file(f"f{i}", b"") for i in range(4)], "w")
    _refused(archive, out, "more than 3 entries", max_entries=3)


# ---------------------------------------------------------------- damaged archives


def test_garbage_zip_is_invalid(tmp_path: Path, out: Path) -> None:
    archive = tmp_path / "junk.zip"
    archive.write_bytes(b"this is not a zip file at all")
    with pytest.raises(Invalid, match=r"junk\.zip is not a valid zip archive") as e:
        safe_extract(archive, out / "model")
    assert e.value.field == "archive"
    assert not isinstance(e.value, UnsafeArchive)
    assert list(out.iterdir()) == []


def test_garbage_tar_is_invalid(tmp_path: Path, out: Path) -> None:
    archive = tmp_path / "junk.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(Invalid, match="not a valid tar archive"):
        safe_extract(archive, out / "model")
    assert list(out.iterdir()) == []


def test_truncated_tar_writes_nothing(tmp_path: Path, out: Path) -> None:
    whole = make_tar(
        tmp_path / "whole.tar",
        [tar_file("a.bin", b"a" * 10_000), tar_file("b.bin", b"b" * 50_000)],
        "w",
    )
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[:30_000])  # b.bin's header is there, its data is not
    with pytest.raises(Invalid, match=r"cut\.tar is not a valid tar archive"):
        safe_extract(cut, out / "model")
    assert list(out.iterdir()) == []


def test_zip_with_bad_crc_writes_nothing(tmp_path: Path, out: Path) -> None:
    import zipfile

    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("first.txt", b"ok")
        zf.writestr("second.txt", b"hello world")
    data = bytearray(archive.read_bytes())
    at = data.index(b"hello world")
    data[at] = ord("j")  # same size, wrong CRC
    archive.write_bytes(bytes(data))
    with pytest.raises(Invalid, match=r"crc\.zip is not a valid zip archive"):
        safe_extract(archive, out / "model")
    assert list(out.iterdir()) == []


def test_unsupported_suffix_is_invalid(tmp_path: Path, out: Path) -> None:
    (tmp_path / "m.rar").write_bytes(b"x")
    with pytest.raises(Invalid, match="not a supported archive"):
        safe_extract(tmp_path / "m.rar", out / "model")
