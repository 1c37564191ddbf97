"""Replica log files on this node: `logs_dir/<endpoint>/<replica-id>.log`, kept after exit.

A replica's stdout and stderr go to its file from its first byte (the backend opens it before
the process starts, or the zygote's child redirects to it before anything else runs). Files
outlive their replica, and the server: they are how a user reads why a replica failed.
`prune` keeps the newest `keep` files of an endpoint; `remove_endpoint` drops them all when
the endpoint itself is deleted.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".log"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class LogFile:
    replica_id: str
    path: Path
    mtime: float


def path_for(logs_dir: Path, endpoint: str, replica_id: str) -> Path:
    return logs_dir / endpoint / f"{replica_id}{SUFFIX}"


def list_files(logs_dir: Path, endpoint: str) -> list[LogFile]:
    """The endpoint's replica log files, oldest first ([] for an unknown endpoint)."""
    if not _SAFE_NAME.match(endpoint):
        return []
    found: list[LogFile] = []
    with contextlib.suppress(OSError):
        for p in (logs_dir / endpoint).iterdir():
            if p.suffix != SUFFIX or not p.is_file() or p.is_symlink():
                continue
            with contextlib.suppress(OSError):
                found.append(LogFile(p.name[: -len(SUFFIX)], p, p.stat().st_mtime))
    return sorted(found, key=lambda f: (f.mtime, f.replica_id))


def prune(logs_dir: Path, endpoint: str, keep: int, *, protect: Collection[str] = ()) -> int:
    """Delete the endpoint's oldest log files beyond the newest `keep` (never those of the
    replicas in `protect`: running ones); returns how many were deleted."""
    every = list_files(logs_dir, endpoint)
    files = [f for f in every if f.replica_id not in protect]
    extra = len(files) - max(0, keep - (len(every) - len(files)))
    deleted = 0
    for f in files[: max(0, extra)]:
        with contextlib.suppress(OSError):
            f.path.unlink()
            deleted += 1
    return deleted


def remove_endpoint(logs_dir: Path, endpoint: str) -> None:
    """Delete every log file of a deleted endpoint (a new one of that name starts clean)."""
    if _SAFE_NAME.match(endpoint):
        shutil.rmtree(logs_dir / endpoint, ignore_errors=True)
