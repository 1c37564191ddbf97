"""Safe unpacking of model archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz).

`safe_extract` reads the whole table of contents and validates every entry before it
writes a single byte. It refuses, with `UnsafeArchive`:

- names that could land outside the destination: `..` components, absolute paths,
  Windows drive letters, backslashes, control characters;
- anything but regular files and folders: symbolic and hard links, devices, fifos;
- duplicate names, or a name that is both a file and a folder;
- more entries than `limits.max_entries`, more uncompressed bytes than `limits.max_bytes`,
  or more than `limits.max_ratio` uncompressed bytes per archive byte (past the first
  `limits.ratio_free_bytes`): a zip or tar bomb. The sizes the entries declare are checked
  as the table of contents is read (a tar.gz is refused before it is read to the end), and
  the bytes actually written are counted against the same limits while they are written.

Files are then written one by one by this module (never by `extractall`), each opened with
O_EXCL | O_NOFOLLOW into a private temporary folder next to `dest`, at most as many bytes as
the entry declared; the folder is renamed to `dest` only once everything is written. So a
refused or corrupt archive leaves `dest` absent (or empty, as it was). For tar archives the
standard library's "data" filter checks every member as well, as a second line of defence.
Archive modes, owners and times are not kept: files are 0644, folders 0755.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

from podium.core.errors import Conflict, Invalid, NotFound, UnsafeArchive
from podium.core.settings import ArchiveLimits

ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
DEFAULT_MAX_BYTES = ArchiveLimits().max_bytes
DEFAULT_MAX_ENTRIES = ArchiveLimits().max_entries

_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_COMPONENT_BYTES = 255
# What a damaged archive raises while it is read (bz2 raises a plain OSError).
_CORRUPT: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
)

Kind = Literal["zip", "tar"]


def is_archive(path: Path) -> bool:
    """True if the file name ends with a supported archive suffix (case-insensitive)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class _Entry:
    rel: str  # normalized relative POSIX path ("" is never used)
    is_dir: bool
    size: int
    open: Callable[[], AbstractContextManager[IO[bytes]]]


class _Budget:
    """How many uncompressed bytes this archive may produce; refuses past them."""

    def __init__(self, archive: Path, limits: ArchiveLimits, archive_bytes: int) -> None:
        self.archive = archive
        self.limits = limits
        self.by_ratio = max(int(limits.max_ratio * archive_bytes), limits.ratio_free_bytes)
        self.archive_bytes = archive_bytes

    def check(self, total: int) -> None:
        if total > self.limits.max_bytes:
            raise UnsafeArchive(
                f"refusing archive {self.archive.name}: its files total {total} bytes "
                f"uncompressed, over the limit of {self.limits.max_bytes} bytes "
                "(PODIUM_ARCHIVE_MAX_BYTES)",
                field="archive",
            )
        if total > self.by_ratio:
            raise UnsafeArchive(
                f"refusing archive {self.archive.name}: it unpacks to {total} bytes "
                f"from {self.archive_bytes}, over the compression ratio limit of "
                f"{self.limits.max_ratio:g} (PODIUM_ARCHIVE_MAX_RATIO)",
                field="archive",
            )


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    limits: ArchiveLimits | None = None,
    max_bytes: int | None = None,
    max_entries: int | None = None,
    name: str | None = None,
) -> None:
    """Unpack `archive` into `dest` (absent or an empty folder) after validating every entry.

    `limits` bound what it may unpack (`max_bytes`/`max_entries` override theirs). `name`
    is the archive's file name when the file itself has another (an upload's temp file);
    it picks the format and names the archive in errors.
    """
    limits = limits or ArchiveLimits()
    if max_bytes is not None:
        limits = replace(limits, max_bytes=max_bytes)
    if max_entries is not None:
        limits = replace(limits, max_entries=max_entries)
    label = Path(name or archive.name)
    kind = _kind(label)
    if not archive.is_file():
        raise NotFound(f"no such archive: {archive}", field="archive")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Conflict(f"cannot unpack into {dest}: it is not an empty folder", field="path")
    budget = _Budget(label, limits, archive.stat().st_size)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                entries = _zip_entries(label, zf, limits.max_entries)
                _check_tree(label, entries, budget)
                _write(label, entries, dest, budget)
        else:
            with tarfile.open(archive, "r:*") as tf:
                entries = _tar_entries(label, tf, dest, budget)
                _check_tree(label, entries, budget)
                _write(label, entries, dest, budget)
    except _Corrupt as e:
        raise _invalid(label, kind, e.cause) from e.cause
    except _CORRUPT as e:
        if _is_io_error(e):
            raise  # a real I/O error (permissions, disk full), not a damaged archive
        raise _invalid(label, kind, e) from e


def _invalid(archive: Path, kind: Kind, cause: BaseException) -> Invalid:
    return Invalid(f"{archive.name} is not a valid {kind} archive: {cause}", field="archive")


def _is_io_error(e: BaseException) -> bool:
    """OSErrors with an errno come from the file system; damaged streams raise them without."""
    return isinstance(e, OSError) and e.errno is not None


def _kind(archive: Path) -> Kind:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if is_archive(archive):
        return "tar"
    raise Invalid(
        f"{archive.name} is not a supported archive: use {', '.join(ARCHIVE_SUFFIXES)}",
        field="archive",
    )


class _Corrupt(Exception):
    """Internal: reading the archive failed; carries the original error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _refuse(archive: Path, name: str, why: str) -> UnsafeArchive:
    return UnsafeArchive(f"refusing archive {archive.name}: entry {name!r} {why}", field="archive")


def _normalize(archive: Path, name: str) -> str:
    """The entry's safe relative path ("" for the archive's root folder), or refuse it."""
    if not name:
        raise _refuse(archive, name, "has an empty name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _refuse(archive, name, "has control characters in its name")
    if _DRIVE.match(name):
        raise _refuse(archive, name, "starts with a Windows drive letter")
    if name.startswith("/"):
        raise _refuse(archive, name, "is an absolute path")
    if "\\" in name:
        raise _refuse(archive, name, "has a backslash in its name (a Windows path separator)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(archive, name, "has a '..' component that escapes the destination")
    if any(len(p.encode("utf-8", "surrogateescape")) > _MAX_COMPONENT_BYTES for p in parts):
        raise _refuse(archive, name, f"has a name part over {_MAX_COMPONENT_BYTES} bytes")
    return "/".join(parts)


def _too_many(archive: Path, max_entries: int) -> UnsafeArchive:
    return UnsafeArchive(
        f"refusing archive {archive.name}: more than {max_entries} entries "
        "(PODIUM_ARCHIVE_MAX_FILES)",
        field="archive",
    )


def _zip_entries(archive: Path, zf: zipfile.ZipFile, max_entries: int) -> list[_Entry]:
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise _too_many(archive, max_entries)
    entries: list[_Entry] = []
    for info in infos:
        rel = _normalize(archive, info.filename)
        mode = info.external_attr >> 16
        fmt = mode & 0o170000
        if fmt == 0o120000:
            raise _refuse(archive, info.filename, "is a symbolic link")
        if fmt not in (0, 0o100000, 0o040000):
            raise _refuse(archive, info.filename, "is a device, fifo or socket")
        if info.flag_bits & 0x1:
            raise _refuse(archive, info.filename, "is encrypted")
        is_dir = info.is_dir() or fmt == 0o040000
        if not rel:
            if not is_dir:
                raise _refuse(archive, info.filename, "is a file without a name")
            continue
        entries.append(_Entry(rel, is_dir, 0 if is_dir else info.file_size, _opener_zip(zf, info)))
    return entries


def _opener_zip(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo
) -> Callable[[], AbstractContextManager[IO[bytes]]]:
    return lambda: zf.open(info)


def _tar_entries(archive: Path, tf: tarfile.TarFile, dest: Path, budget: _Budget) -> list[_Entry]:
    """Read the table of contents, refusing as soon as the entries declare too much (a
    compressed tar is read to its end to list it: a bomb must stop early)."""
    entries: list[_Entry] = []
    data_filter = getattr(tarfile, "data_filter", None)
    max_entries = budget.limits.max_entries
    declared = 0
    for count, member in enumerate(tf, start=1):
        if count > max_entries:
            raise _too_many(archive, max_entries)
        if member.isreg():
            declared += member.size
            budget.check(declared)
        rel = _normalize(archive, member.name)
        if member.issym():
            raise _refuse(archive, member.name, f"is a symbolic link (to {member.linkname!r})")
        if member.islnk():
            raise _refuse(archive, member.name, f"is a hard link (to {member.linkname!r})")
        if member.ischr() or member.isblk():
            raise _refuse(archive, member.name, "is a device")
        if member.isfifo():
            raise _refuse(archive, member.name, "is a fifo")
        if not (member.isreg() or member.isdir()):
            raise _refuse(archive, member.name, "is not a regular file or folder")
        if data_filter is not None:  # defence in depth: the standard library's own checks
            try:
                data_filter(member, str(dest))
            except tarfile.FilterError as e:
                raise _refuse(archive, member.name, f"is unsafe ({e})") from None
        if not rel:
            if not member.isdir():
                raise _refuse(archive, member.name, "is a file without a name")
            continue
        size = 0 if member.isdir() else member.size
        entries.append(_Entry(rel, member.isdir(), size, _opener_tar(tf, member)))
    return entries


def _opener_tar(
    tf: tarfile.TarFile, member: tarfile.TarInfo
) -> Callable[[], AbstractContextManager[IO[bytes]]]:
    def open_member() -> AbstractContextManager[IO[bytes]]:
        f = tf.extractfile(member)
        assert f is not None  # None only for members that are not files, refused above
        return f

    return open_member


def _check_tree(archive: Path, entries: list[_Entry], budget: _Budget) -> None:
    files: set[str] = set()
    dirs: set[str] = set()
    total = 0
    for e in entries:
        if e.rel in files or (not e.is_dir and e.rel in dirs):
            raise _refuse(archive, e.rel, "appears more than once")
        (dirs if e.is_dir else files).add(e.rel)
        total += e.size
    budget.check(total)  # what the entries declare; `_write` counts what they hold
    for e in entries:
        parts = e.rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                raise _refuse(archive, e.rel, f"is inside {parent!r}, which is a file")


def _write(archive: Path, entries: list[_Entry], dest: Path, budget: _Budget) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        root = tmp.resolve()
        total = 0
        for e in entries:
            parts = e.rel.split("/")
            target = tmp.joinpath(*parts)
            if not target.resolve().is_relative_to(root):  # cannot happen after _normalize
                raise _refuse(archive, e.rel, "escapes the destination")
            if e.is_dir:
                _folders(tmp, parts)
                continue
            _folders(tmp, parts[:-1])
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:
                written = _copy(archive, e, out, budget, total)
            total += written
            if written != e.size:
                raise _Corrupt(ValueError(f"entry {e.rel!r} is shorter than it declares"))
        tmp.chmod(0o755)
        if dest.exists():
            dest.rmdir()  # checked empty before we started
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _folders(root: Path, parts: list[str]) -> None:
    """Make root/parts[0]/parts[1]/..., each folder 0755 (`Path.mkdir(parents=True)` would
    give the parents it makes the default mode, 0777 less the umask: under umask 0, folders
    anyone may write into)."""
    folder = root
    for part in parts:
        folder = folder / part
        folder.mkdir(mode=0o755, exist_ok=True)


def _copy(archive: Path, entry: _Entry, out: IO[bytes], budget: _Budget, before: int) -> int:
    """Copy one entry; refuses past its declared size or past the archive's budget
    (`before`: bytes the archive's earlier entries wrote). A damaged entry raises what its
    reader raises, for `safe_extract` to tell from an I/O error."""
    written = 0
    with entry.open() as src:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                return written
            written += len(chunk)
            if written > entry.size:
                why = f"holds more than the {entry.size} bytes it declares"
                raise _refuse(archive, entry.rel, why)
            budget.check(before + written)
            out.write(chunk)
