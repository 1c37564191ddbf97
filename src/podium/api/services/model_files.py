"""A repository model version's files as one tar, for a node that fetches it (Ray backend).

The tar holds exactly the files the version's digest covers (`artifacts.hashing.list_files`:
regular files, sorted, no links), under their relative paths, so the receiver can unpack it
with the bounded unpacker and check the digest it gets in `SHA256_HEADER`.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

from podium.artifacts.hashing import list_files

SHA256_HEADER = "x-podium-sha256"


def pack_version(folder: Path, tmp_dir: Path) -> Path:
    """Write `folder`'s files into a new tar under `tmp_dir` (the caller deletes it once
    sent). Uncompressed: models compress poorly and the node unpacks it at once."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="model-", suffix=".tar", dir=tmp_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
            for rel, absolute in list_files(folder):
                info = tar.gettarinfo(str(absolute), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = 0o644
                with absolute.open("rb") as f:
                    tar.addfile(info, f)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
