"""The rules `safe_extract` applies, at their edges: names, kinds of entry, limits, modes.

Every archive here is a real file built with zipfile/tarfile (some with bytes patched the
way a hostile or broken tool would write them); every check is on what lands on disk, or
on the error a user would read.
"""

from __future__ import annotations

import os
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.artifacts.unpack import safe_extract
from podium.core.errors import Conflict, Invalid, NotFound, UnsafeArchive
from podium.core.settings import ArchiveLimits

from .archives import make_tar, tar_dir, tar_file, tar_special

MIB = 1024 * 1024


@pytest.fixture
def out(tmp_path: Path) -> Path:
    parent = tmp_path / "out"
    parent.mkdir()
    return parent


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """A second empty parent, for a second refusal in one test."""
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.fixture
def no_umask() -> Iterator[None]:
    """No umask, so that modes on disk are exactly the ones unpacking asks for (a service
    may well run with umask 0: a folder asked for as 0777 would then be world-writable)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@dataclass(frozen=True)
class Z:
    """One zip entry; `mode` is a Unix st_mode as zip tools on Unix record it."""

    name: str
    data: bytes = b""
    mode: int = 0


def _zip(path: Path, *entries: Z) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for e in entries:
            info = zipfile.ZipInfo(e.name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if e.mode:
                info.create_system = 3
                info.external_attr = e.mode << 16
            zf.writestr(info, e.data)
    return path


def _patch_central(path: Path, index: int, offset: int, fmt: str, value: int) -> None:
    """Rewrite one field of the `index`th central directory header (what zipfile reads)."""
    data = bytearray(path.read_bytes())
    at = -1
    for _ in range(index + 1):
        at = data.index(b"PK\x01\x02", at + 1)
    struct.pack_into(fmt, data, at + offset, value)
    path.write_bytes(bytes(data))


def _refusal(archive: Path, out: Path, **kwargs: object) -> str:
    """Unpack must refuse as unsafe, leave nothing behind, and say why: the message."""
    dest = out / "model"
    with pytest.raises(UnsafeArchive) as e:
        safe_extract(archive, dest, **kwargs)  # type: ignore[arg-type]
    assert e.value.field == "archive"
    assert list(out.iterdir()) == []
    return e.value.message


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- names


def test_spaces_and_non_ascii_names_unpack_where_they_say(tmp_path: Path, out: Path) -> None:
    archive = _zip(
        tmp_path / "m.zip",
        Z("my model/config file.json", b"{}"),
        Z("modèle/poids ~1.bin", b"w"),
    )
    safe_extract(archive, out / "model")
    assert _files(out / "model") == {
        "my model/config file.json": b"{}",
        "modèle/poids ~1.bin": b"w",
    }


def test_a_name_part_may_have_255_bytes_not_256(tmp_path: Path, out: Path, empty: Path) -> None:
    safe_extract(_zip(tmp_path / "ok.zip", Z("d/" + "x" * 255, b"1")), out / "model")
    assert (out / "model" / "d" / ("x" * 255)).read_bytes() == b"1"
    wide = "é" * 128  # 128 characters, 256 bytes in UTF-8
    message = _refusal(_zip(tmp_path / "wide.zip", Z(wide, b"1")), empty)
    assert message.endswith(f"entry {wide!r} has a name part over 255 bytes")


@pytest.mark.parametrize("char", ["\x01", "\t", "\n", "\x1f", "\x7f"])
def test_control_characters_and_delete_are_refused(tmp_path: Path, out: Path, char: str) -> None:
    name = f"evil{char}name"
    message = _refusal(_zip(tmp_path / "c.zip", Z(name, b"1")), out)
    assert message == f"refusing archive c.zip: entry {name!r} has control characters in its name"


def test_an_empty_name_is_refused(tmp_path: Path, out: Path) -> None:
    message = _refusal(_zip(tmp_path / "e.zip", Z("", b"1")), out)
    assert message == "refusing archive e.zip: entry '' has an empty name"


@pytest.mark.parametrize("twin", ["a//b.txt", "a/./b.txt", "./a/b.txt", "a/b.txt/"])
def test_empty_and_dot_parts_name_the_same_file(tmp_path: Path, out: Path, twin: str) -> None:
    archive = _zip(tmp_path / "t.zip", Z("a/b.txt", b"1"), Z(twin, b"2" if "." in twin else b""))
    assert "more than once" in _refusal(archive, out)


def test_dot_and_empty_parts_are_dropped(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "d.zip", Z("./x//y/./z.txt", b"z"), Z(".//top.txt", b"t"))
    safe_extract(archive, out / "model")
    assert _files(out / "model") == {"x/y/z.txt": b"z", "top.txt": b"t"}


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../up", "has a '..' component that escapes the destination"),
        ("/abs", "is an absolute path"),
        ("d:evil", "starts with a Windows drive letter"),
        ("a\\b", "has a backslash in its name (a Windows path separator)"),
    ],
)
def test_a_refused_name_is_quoted_with_the_reason(
    tmp_path: Path, out: Path, name: str, why: str
) -> None:
    message = _refusal(_zip(tmp_path / "n.zip", Z(name, b"1")), out)
    assert message == f"refusing archive n.zip: entry {name!r} {why}"


# ---------------------------------------------------------------- kinds of zip entry


def test_a_zip_made_on_unix_keeps_files_and_folders(
    tmp_path: Path, out: Path, no_umask: None
) -> None:
    archive = _zip(
        tmp_path / "unix.zip",
        Z("sub", mode=0o040755),  # a folder by its mode alone, no trailing slash
        Z("sub/run.sh", b"#!/bin/sh\n", mode=0o100755),
        Z("w.bin", b"w", mode=0o100600),
    )
    safe_extract(archive, out / "model")
    assert (out / "model" / "sub").is_dir()
    assert _files(out / "model") == {"sub/run.sh": b"#!/bin/sh\n", "w.bin": b"w"}
    assert (out / "model" / "sub" / "run.sh").stat().st_mode & 0o777 == 0o644  # not kept


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        (0o120777, "is a symbolic link"),
        (0o010644, "is a device, fifo or socket"),  # fifo
        (0o140755, "is a device, fifo or socket"),  # socket
        (0o060644, "is a device, fifo or socket"),  # block device
    ],
)
def test_zip_entries_that_are_not_files_or_folders(
    tmp_path: Path, out: Path, mode: int, why: str
) -> None:
    message = _refusal(_zip(tmp_path / "k.zip", Z("ok", b"1"), Z("odd", b"", mode)), out)
    assert message == f"refusing archive k.zip: entry 'odd' {why}"


def test_an_encrypted_zip_entry_is_refused(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "enc.zip", Z("plain", b"1"), Z("secret", b"2"))
    _patch_central(archive, 1, 8, "<H", 0x1)  # general purpose flags: encrypted
    message = _refusal(archive, out)
    assert message == "refusing archive enc.zip: entry 'secret' is encrypted"


def test_the_root_folder_entry_is_skipped(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "r.zip", Z("./"), Z("a.txt", b"a"), Z("b/c.txt", b"c"))
    safe_extract(archive, out / "model")
    assert _files(out / "model") == {"a.txt": b"a", "b/c.txt": b"c"}


def test_a_file_named_like_the_root_is_refused(tmp_path: Path, out: Path) -> None:
    message = _refusal(_zip(tmp_path / "r.zip", Z("a", b"a"), Z(".", b"x")), out)
    assert message == "refusing archive r.zip: entry '.' is a file without a name"
    tar = make_tar(tmp_path / "r.tar", [tar_file("a", b"a"), tar_file("./", b"x")], "w")
    assert _refusal(tar, out).endswith("entry './' is a file without a name")


# ---------------------------------------------------------------- tar members


def test_tar_refusals_name_the_member(tmp_path: Path, out: Path) -> None:
    cases = [
        (
            tar_special("ln", tarfile.SYMTYPE, "/etc/passwd"),
            "entry 'ln' is a symbolic link (to '/etc/passwd')",
        ),
        (tar_special("hard", tarfile.LNKTYPE, "a"), "entry 'hard' is a hard link (to 'a')"),
        (tar_special("tty", tarfile.CHRTYPE), "entry 'tty' is a device"),
        (tar_special("sda", tarfile.BLKTYPE), "entry 'sda' is a device"),
        (tar_special("pipe", tarfile.FIFOTYPE), "entry 'pipe' is a fifo"),
    ]
    for member, why in cases:
        archive = make_tar(tmp_path / "t.tar", [tar_file("a", b"a"), member], "w")
        assert _refusal(archive, out) == f"refusing archive t.tar: {why}"


def test_a_tar_member_of_an_unknown_type_is_refused(tmp_path: Path, out: Path) -> None:
    odd = tarfile.TarInfo("odd")
    odd.type = b"Z"  # no such type: tarfile reads it as an opaque record with data
    odd.size = 3
    archive = make_tar(tmp_path / "u.tar", [(odd, b"abc"), tar_file("after", b"a")], "w")
    assert _refusal(archive, out).endswith("entry 'odd' is not a regular file or folder")


# ---------------------------------------------------------------- one name, two things


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([Z("a/"), Z("a", b"1")], "entry 'a' appears more than once"),  # folder, then file
        ([Z("a", b"1"), Z("a/")], "entry 'a' appears more than once"),  # file, then folder
        ([Z("a", b"1"), Z("a/b/c", b"2")], "entry 'a/b/c' is inside 'a', which is a file"),
        ([Z("a/b", b"1"), Z("a/b/c", b"2")], "entry 'a/b/c' is inside 'a/b', which is a file"),
    ],
)
def test_a_name_cannot_be_a_file_and_a_folder(
    tmp_path: Path, out: Path, entries: list[Z], why: str
) -> None:
    assert _refusal(_zip(tmp_path / "x.zip", *entries), out) == f"refusing archive x.zip: {why}"


def test_folders_may_be_listed_twice_before_or_after_their_files(tmp_path: Path, out: Path) -> None:
    archive = _zip(
        tmp_path / "dirs.zip",
        Z("a/b/c.txt", b"c"),  # no folder entries before it
        Z("a/"),  # listed after its file created it
        Z("./a/"),  # and again
        Z("x/y/z/"),  # a deep empty folder whose parents are not listed
    )
    safe_extract(archive, out / "model")
    assert _files(out / "model") == {"a/b/c.txt": b"c"}
    assert (out / "model" / "x" / "y" / "z").is_dir()


# ---------------------------------------------------------------- limits at their edges


def test_entry_limits_are_inclusive(tmp_path: Path, out: Path, empty: Path) -> None:
    zipped = _zip(tmp_path / "z.zip", Z("d/"), Z("d/a", b"a"), Z("b", b"b"))
    safe_extract(zipped, out / "z", max_entries=3)
    tarred = make_tar(
        tmp_path / "t.tar", [tar_dir("d"), tar_file("d/a", b"a"), tar_file("b", b"b")], "w"
    )
    safe_extract(tarred, out / "t", max_entries=3)
    assert _files(out / "z") == _files(out / "t") == {"d/a": b"a", "b": b"b"}
    assert _refusal(tarred, empty, max_entries=2).endswith(
        "more than 2 entries (PODIUM_ARCHIVE_MAX_FILES)"
    )


def test_byte_limits_count_file_bytes_only(tmp_path: Path, out: Path, empty: Path) -> None:
    """Folders weigh nothing: 100 bytes of files in folders pass a 100-byte limit."""
    tarred = make_tar(
        tmp_path / "t.tgz",
        [tar_dir("d"), tar_file("d/a", b"a" * 60), tar_dir("e"), tar_file("b", b"b" * 40)],
    )
    safe_extract(tarred, out / "t", max_bytes=100)
    zipped = _zip(tmp_path / "z.zip", Z("d/"), Z("d/a", b"a" * 60), Z("e/"), Z("b", b"b" * 40))
    safe_extract(zipped, out / "z", max_bytes=100)
    assert _files(out / "t") == _files(out / "z")
    message = _refusal(tarred, empty, max_bytes=99)
    assert message == (
        "refusing archive t.tgz: its files total 100 bytes uncompressed, over the limit of "
        "99 bytes (PODIUM_ARCHIVE_MAX_BYTES)"
    )


def test_a_folder_weighs_nothing_whatever_its_header_says(tmp_path: Path, out: Path) -> None:
    folder = tarfile.TarInfo("d")
    folder.type, folder.size = tarfile.DIRTYPE, 10**9  # a size in a folder's header
    tarred = make_tar(tmp_path / "t.tar", [(folder, None), tar_file("d/a", b"a")], "w")
    safe_extract(tarred, out / "t", max_bytes=1)
    zipped = _zip(tmp_path / "z.zip", Z("d/", b"x" * 500), Z("d/a", b"a"))  # data in a folder
    safe_extract(zipped, out / "z", max_bytes=1)
    assert _files(out / "t") == _files(out / "z") == {"d/a": b"a"}


def test_the_ratio_limit_is_inclusive(tmp_path: Path, out: Path, empty: Path) -> None:
    archive = _zip(tmp_path / "r.zip", Z("zeros", bytes(50_000)))
    size = archive.stat().st_size
    exact = ArchiveLimits(max_ratio=50_000 / size, ratio_free_bytes=0)
    assert int(exact.max_ratio * size) == 50_000
    safe_extract(archive, out / "model", limits=exact)
    assert (out / "model" / "zeros").stat().st_size == 50_000
    free = ArchiveLimits(max_ratio=1, ratio_free_bytes=50_000)  # the allowance alone
    safe_extract(archive, out / "again", limits=free)
    below = ArchiveLimits(max_ratio=1, ratio_free_bytes=49_999)
    message = _refusal(archive, empty, limits=below)
    assert message == (
        f"refusing archive r.zip: it unpacks to 50000 bytes from {size}, over the compression "
        "ratio limit of 1 (PODIUM_ARCHIVE_MAX_RATIO)"
    )


def test_a_tar_is_refused_on_the_sizes_its_headers_add_up_to(tmp_path: Path, out: Path) -> None:
    """Two members of 600 bytes against 1000: refused at the second header, so the damage
    after it is never read (read on, it would be a damaged archive instead)."""
    whole = make_tar(
        tmp_path / "w.tar", [tar_file("a", b"a" * 600), tar_file("b", b"b" * 600)], "w"
    )
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: 512 + 1024 + 512 + 100])  # b's data is cut short
    with pytest.raises(Invalid, match="not a valid tar archive"):
        safe_extract(cut, out / "model")  # with room for both, the damage is found
    assert "over the limit of 1000" in _refusal(cut, out, max_bytes=1000)


def test_declared_sizes_are_refused_before_any_data_is_read(tmp_path: Path, out: Path) -> None:
    """A zip over the limit is refused as unsafe even when its data is damaged too."""
    archive = tmp_path / "z.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a", b"a" * 60)
        zf.writestr("b", b"b" * 41)
    data = bytearray(archive.read_bytes())
    data[data.index(b"b" * 41)] = ord("x")  # b's CRC no longer matches
    archive.write_bytes(bytes(data))
    assert "101 bytes uncompressed" in _refusal(archive, out, max_bytes=100)


# ---------------------------------------------------------------- what lands on disk


def test_modes_are_0644_and_0755_whatever_the_archive_says(
    tmp_path: Path, out: Path, no_umask: None
) -> None:
    loud = tarfile.TarInfo("deep/er/run")
    loud.size, loud.mode = 1, 0o4777  # setuid, world-writable
    folder = tarfile.TarInfo("open")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o777
    archive = make_tar(tmp_path / "m.tar", [(folder, None), (loud, b"x")], "w")
    dest = out / "model"
    safe_extract(archive, dest)
    modes = {p.relative_to(dest).as_posix(): p.stat().st_mode & 0o7777 for p in dest.rglob("*")}
    assert modes == {"open": 0o755, "deep": 0o755, "deep/er": 0o755, "deep/er/run": 0o644}
    assert dest.stat().st_mode & 0o7777 == 0o755


def test_a_file_bigger_than_one_read_is_copied_whole(tmp_path: Path, out: Path) -> None:
    data = bytes(range(251)) * (MIB // 251 * 3)  # about 3 MiB, several reads
    archive = make_tar(tmp_path / "big.tar", [tar_file("w.bin", data)], "w")
    safe_extract(archive, out / "model")
    assert (out / "model" / "w.bin").read_bytes() == data


def test_dest_may_be_deep_under_missing_folders(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b" / "model"
    safe_extract(_zip(tmp_path / "m.zip", Z("f", b"1")), dest)
    assert _files(dest) == {"f": b"1"}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model"]  # no temp folder left


def test_the_temp_folder_is_next_to_dest_not_in_the_system_temp(
    tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finished folder is renamed into place: from /tmp on another file system that
    rename would fail. With no usable system temp folder, unpacking still works."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    safe_extract(_zip(tmp_path / "m.zip", Z("f", b"1")), out / "model")
    assert _files(out / "model") == {"f": b"1"}


# ---------------------------------------------------------------- damaged, missing, misplaced


def test_an_entry_shorter_than_it_declares_is_damaged(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "short.zip", Z("ok", b"fine"), Z("w.bin", b"w" * 100))
    _patch_central(archive, 1, 24, "<I", 150)  # uncompressed size: 150, the data holds 100
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("w.bin") == b"w" * 100  # zipfile itself does not notice
    with pytest.raises(Invalid) as e:
        safe_extract(archive, out / "model")
    assert not isinstance(e.value, UnsafeArchive)
    assert e.value.message == (
        "short.zip is not a valid zip archive: entry 'w.bin' is shorter than it declares"
    )
    assert list(out.iterdir()) == []


def test_a_damaged_entry_says_what_is_wrong(tmp_path: Path, out: Path) -> None:
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("w.bin", b"hello world")
    data = bytearray(archive.read_bytes())
    data[data.index(b"hello world")] = ord("j")
    archive.write_bytes(bytes(data))
    with pytest.raises(Invalid) as e:
        safe_extract(archive, out / "model")
    assert e.value.message.startswith("crc.zip is not a valid zip archive: Bad CRC-32")
    assert isinstance(e.value.__cause__, zipfile.BadZipFile)


def test_a_disk_error_is_not_blamed_on_the_archive(tmp_path: Path) -> None:
    """An OSError from our own file system (here: dest's parent is a file) propagates as
    itself; it is not reported to the user as a damaged archive."""
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OSError) as e:
        safe_extract(_zip(tmp_path / "m.zip", Z("f", b"1")), tmp_path / "blocker" / "model")
    assert not isinstance(e.value, Invalid)
    assert e.value.errno is not None


def test_a_missing_archive_is_not_found(tmp_path: Path, out: Path) -> None:
    with pytest.raises(NotFound) as e:
        safe_extract(tmp_path / "gone.zip", out / "model")
    assert e.value.field == "archive"
    assert e.value.message == f"no such archive: {tmp_path / 'gone.zip'}"
    (tmp_path / "folder.zip").mkdir()
    with pytest.raises(NotFound):
        safe_extract(tmp_path / "folder.zip", out / "model")


def test_dest_that_is_a_file_is_a_conflict(tmp_path: Path, out: Path) -> None:
    (out / "model").write_text("here")
    with pytest.raises(Conflict) as e:
        safe_extract(_zip(tmp_path / "m.zip", Z("f", b"1")), out / "model")
    assert e.value.field == "path"
    assert e.value.message == f"cannot unpack into {out / 'model'}: it is not an empty folder"
    assert (out / "model").read_text() == "here"


def test_an_upload_is_unpacked_by_the_name_it_was_given(
    tmp_path: Path, out: Path, empty: Path
) -> None:
    """An upload sits in a temp file: `name` picks the format and names it in errors."""
    upload = tmp_path / "upload-3f2a.tmp"
    make_tar(upload, [tar_file("model.bin", b"m")])  # a .tar.gz without the suffix
    safe_extract(upload, out / "model", name="iris.tar.gz")
    assert _files(out / "model") == {"model.bin": b"m"}
    message = _refusal(upload, empty, name="iris.tar.gz", max_bytes=0)
    assert message.startswith("refusing archive iris.tar.gz:")
    with pytest.raises(Invalid) as e:
        safe_extract(upload, out / "other", name="m.rar")
    assert e.value.message == (
        "m.rar is not a supported archive: use .zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz"
    )
    assert e.value.field == "archive"


def test_upper_case_suffixes_pick_the_format(tmp_path: Path, out: Path) -> None:
    safe_extract(_zip(tmp_path / "M.ZIP", Z("f", b"1")), out / "z")
    make_tar(tmp_path / "M.TAR.GZ", [tar_file("g", b"2")])
    safe_extract(tmp_path / "M.TAR.GZ", out / "t")
    assert _files(out / "z") == {"f": b"1"} and _files(out / "t") == {"g": b"2"}
