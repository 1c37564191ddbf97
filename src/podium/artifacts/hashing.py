"""Content hashing of a model: one sha256 over a file or a folder tree.

The digest covers, for every regular file in sorted relative POSIX path order, the path,
the size and the bytes (streamed). Empty folders and file metadata (modes, times) are not
part of it, so the same files give the same digest wherever they were unpacked. A single
file hashes as a folder holding only that file, under its own name.

Symbolic links and special files (fifos, devices, sockets) inside a folder are refused,
never followed: a model is plain files.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from podium.core.errors import Invalid, NotFound

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TreeDigest:
    sha256: str  # hex
    size_bytes: int  # sum of the files' sizes
    files: int  # number of regular files


def list_files(path: Path) -> list[tuple[str, Path]]:
    """Every regular file under `path` as (relative POSIX path, absolute path), sorted.

    A single file gives one entry named after the file itself.
    Raises NotFound if `path` does not exist, Invalid on a symlink or special file inside.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFound(f"no such file or folder: {path}", field="path") from None
    if stat.S_ISREG(st.st_mode):
        return [(path.name, path)]
    if not stat.S_ISDIR(st.st_mode):
        raise Invalid(f"{path} is neither a regular file nor a folder", field="path")
    found: list[tuple[str, Path]] = []
    _walk(path, "", found)
    found.sort(key=lambda item: item[0])
    return found


def _walk(folder: Path, prefix: str, found: list[tuple[str, Path]]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if entry.is_symlink():
                raise Invalid(
                    f"refusing {rel!r} in {folder}: symbolic links are not allowed in a model",
                    field="path",
                )
            if entry.is_dir(follow_symlinks=False):
                _walk(Path(entry.path), f"{rel}/", found)
            elif entry.is_file(follow_symlinks=False):
                found.append((rel, Path(entry.path)))
            else:
                raise Invalid(
                    f"refusing {rel!r} in {folder}: not a regular file (fifo, device or socket)",
                    field="path",
                )


def sha256_tree(path: Path) -> TreeDigest:
    """Hash a file or a folder (see the module docstring for what is covered)."""
    digest = hashlib.sha256()
    total = 0
    files = list_files(path)
    for rel, file in files:
        with open(os.open(file, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest.update(f"{rel}\0{size}\0".encode())
            read = 0
            while chunk := f.read(CHUNK_BYTES):
                read += len(chunk)
                digest.update(chunk)
        if read != size:
            raise Invalid(f"{rel!r} in {path} changed while it was being hashed", field="path")
        total += size
    return TreeDigest(sha256=digest.hexdigest(), size_bytes=total, files=len(files))
