"""Builders for real archive files, safe and hostile, used by the artifact tests."""

from __future__ import annotations

import io
import tarfile
import warnings
import zipfile
from pathlib import Path


def make_zip(path: Path, entries: list[tuple[str, bytes]], *, unix_mode: int = 0) -> Path:
    """A zip holding exactly these names (no normalization); names ending in / are folders."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                if unix_mode:
                    info.create_system = 3
                    info.external_attr = unix_mode << 16
                zf.writestr(info, data)
    return path


def tar_file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def tar_special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def tar_dir(name: str) -> tuple[tarfile.TarInfo, None]:
    return tar_special(name, tarfile.DIRTYPE)


def make_tar(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as tf:  # type: ignore[call-overload]
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path
