"""Replica log files on this node: `logs_dir/<endpoint>/<replica-id>.log`, kept after exit.

A replica's stdout and stderr go to its file from its first byte (the backend opens it before
the process starts, or the zygote's child redirects to it before anything else runs). Files
outlive their replica, and the server: they are how a user reads why a replica failed.
`prune` keeps the newest `keep` files of an endpoint; `remove_endpoint` drops them all when
the endpoint itself is deleted.

This module is the one place that knows where a log file is (`path_for`, `find`: ids that
are not `SAFE_ID` never become paths), how its end is read (`tail`, `tail_lines`: the
backend's crash events and its `logs`) and how it is followed (`Follower`: what was appended
since the last read, one complete line at a time). A tail reads at most
`TAIL_MAX_BYTES` from the end of the file, never the whole file, and cuts each line to
`MAX_LINE_CHARS`, so a replica that prints megabytes without a newline cannot bloat an
event or the server's memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from podium.core.errors import Invalid

SUFFIX = ".log"
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # endpoint names and replica ids
MAX_LINE_CHARS = 500  # a longer line in a tail is cut, ending in "…"
TAIL_MAX_BYTES = 1024 * 1024  # read from the end of a file for a tail, at most
READ_MAX = 1024 * 1024  # bytes a follower reads per `read_new`


@dataclass(frozen=True, slots=True)
class LogFile:
    replica_id: str
    path: Path
    mtime: float


def path_for(logs_dir: Path, endpoint: str, replica_id: str) -> Path:
    """Where the replica's stdout and stderr go; `Invalid` for an id that is no file name."""
    for value, name in ((endpoint, "endpoint"), (replica_id, "replica")):
        if not SAFE_ID.match(value):
            raise Invalid(f"{value!r} cannot name a log file", field=name)
    return logs_dir / endpoint / f"{replica_id}{SUFFIX}"


def find(logs_dir: Path, replica_id: str) -> Path | None:
    """The log file of `replica_id` under any endpoint (e.g. a previous server's replica)."""
    if not SAFE_ID.match(replica_id):
        return None
    with contextlib.suppress(OSError):
        for path in logs_dir.glob(f"*/{replica_id}{SUFFIX}"):
            return path
    return None


def tail_lines(path: Path, n: int, *, block: int = 8192) -> list[str]:
    """The last `n` lines of a log file (a trailing partial line counts as one); [] if it
    cannot be read."""
    return tail(path, n, block=block)[0]


def tail(
    path: Path,
    n: int,
    *,
    complete: bool = False,
    max_bytes: int = TAIL_MAX_BYTES,
    block: int = 8192,
) -> tuple[list[str], int]:
    """The last `n` lines of `path` (each cut to `MAX_LINE_CHARS`) and the offset just after
    them. With `complete`, a trailing partial line is left out (a follower reads it once it
    is complete). Reads backwards from the end, at most `max_bytes`; a line that starts
    before that is left out, unless it is all there is (then its last bytes are shown)."""
    try:
        f = path.open("rb")
    except OSError:
        return [], 0
    with f:
        pos = end = f.seek(0, os.SEEK_END)
        floor = max(0, end - max_bytes)
        chunks: list[bytes] = []
        newlines = 0
        # n lines need n newlines before them, plus possibly one terminating the last line.
        while pos > floor and newlines <= n:
            step = min(block, pos - floor)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    cut = data.rfind(b"\n") + 1 if complete else len(data)
    start = 0
    if pos > 0 and newlines > 0:  # the window starts inside a line: not a whole one
        start = min(data.find(b"\n") + 1, cut)
    lines = data[start:cut].decode("utf-8", errors="replace").splitlines()
    return [_cut(line) for line in lines[-n:]] if n > 0 else [], pos + cut


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


class Follower:
    """One log file being followed: `read_new` returns the complete lines appended since the
    last call (at most `READ_MAX` bytes a call). A file that shrank was truncated or replaced:
    it is read again from its start. A file not there yet is looked for again each call
    (`locate`), so a replica whose log appears later is followed from its first line."""

    def __init__(
        self, path: Path | None, offset: int = 0, locate: Callable[[], Path | None] | None = None
    ) -> None:
        self.path = path
        self.offset = offset
        self._partial = b""
        self._locate = locate

    def read_new(self) -> list[str]:
        if self.path is None and self._locate is not None:
            self.path = self._locate()
        if self.path is None:
            return []
        try:
            size = self.path.stat().st_size
            if size < self.offset:  # truncated or replaced: start over
                self.offset, self._partial = 0, b""
            if size == self.offset:
                return []
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read(READ_MAX)
        except OSError:
            return []
        self.offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        lines = data[:cut].decode("utf-8", errors="replace").splitlines()
        if len(self._partial) > READ_MAX:  # a runaway line without an end: show it in pieces
            lines.append(self._partial.decode("utf-8", errors="replace"))
            self._partial = b""
        return lines


def follow(
    path: Path | None, n: int | None, locate: Callable[[], Path | None] | None = None
) -> tuple[list[str], Follower]:
    """The last `n` complete lines of `path` and a `Follower` of what comes after them; with
    `n` None no tail: the follower starts at the file's first byte."""
    if path is None or n is None:
        return [], Follower(path, 0, locate)
    lines, offset = tail(path, n, complete=True)
    return lines, Follower(path, offset, locate)


def list_files(logs_dir: Path, endpoint: str) -> list[LogFile]:
    """The endpoint's replica log files, oldest first ([] for an unknown endpoint)."""
    if not SAFE_ID.match(endpoint):
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
    if SAFE_ID.match(endpoint):
        shutil.rmtree(logs_dir / endpoint, ignore_errors=True)
