"""Pack a model folder into a .tar.gz for upload.

The archive is reproducible (sorted names, zeroed times and owners), so pushing the same
folder twice gives the same bytes and the server can tell it is a duplicate. Names are
relative to the folder; symbolic links are never followed (they are left out).
"""

from __future__ import annotations

import gzip
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1024 * 1024


def pack_folder(folder: Path, dest: Path) -> list[str]:
    """Write `folder` as a gzipped tar at `dest`; return the member names written."""
    names: list[str] = []
    with (
        dest.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _walk(folder):
            rel = path.relative_to(folder).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isdir():
                tar.addfile(info)
            else:
                with path.open("rb") as f:
                    tar.addfile(info, f)
            names.append(rel)
    return names


def _walk(folder: Path) -> Iterator[Path]:
    """Directories and regular files under `folder`, sorted, without following links."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        keep = []
        for d in sorted(dirs):
            if not (base / d).is_symlink():
                keep.append(d)
        dirs[:] = keep  # prune: os.walk must not descend into linked folders
        entries = [base / d for d in keep]
        entries += [base / f for f in files if _regular(base / f)]
        yield from sorted(entries)


def _regular(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()


def iter_file(path: Path, chunk: int = CHUNK) -> Iterator[bytes]:
    """Read a file in chunks, for a streamed request body."""
    with path.open("rb") as f:
        while block := f.read(chunk):
            yield block
