"""The file store (issue 13): job inputs and outputs, and task results too large to keep
inline.

Bytes live on disk under `Settings.files_dir`, one file per id (mode 0600, folder 0700:
they are model inputs and outputs); a `files` row says whose they are and what they are.
A file is written to a temporary name and renamed into place only once complete, so a
crash never leaves a half-written file under a real id, and a stream larger than its
bound is refused while it arrives (`TooLarge`), not after it filled the disk. The row is
added after the bytes are in place: a row always has its bytes (bytes without a row, left
by a crash between the two, are harmless and never served).
"""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import NotFound, TooLarge
from podium.core.tasks import FileId, FilePurpose, new_file_id
from podium.store.tables import FileRow

_F = cast(Table, FileRow.__table__)
CHUNK = 1 << 20
MAX_FILENAME = 255


@dataclass(frozen=True, slots=True)
class Written:
    """Bytes now on disk under `id` (no row yet)."""

    id: FileId
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line longer than `limit` bytes (`FileStore.iter_bounded_lines`): its bytes
    were skipped, not read into memory."""

    limit: int


@dataclass(frozen=True, slots=True)
class FileView:
    id: str
    project: str
    filename: str
    purpose: FilePurpose
    bytes: int
    sha256: str
    content_type: str
    token_id: str | None
    created_at: float
    expires_at: float | None


class FileStore:
    """The bytes of files, under one folder, named by id."""

    def __init__(self, files_dir: Path) -> None:
        self.dir = files_dir

    def _ensure_dir(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, file_id: str) -> Path:
        if not file_id.startswith("file_") or not file_id[5:].isalnum():
            raise NotFound(f"file {file_id!r} not found", field="file_id")
        return self.dir / file_id

    def _open_tmp(self, file_id: str) -> tuple[Path, IO[bytes]]:
        self._ensure_dir()
        tmp = self.dir / f".{file_id}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        return tmp, os.fdopen(fd, "wb")

    def write(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> Written:
        """Write a stream of chunks; `TooLarge` (nothing kept) past `max_bytes`."""
        file_id = new_file_id()
        tmp, out = self._open_tmp(file_id)
        digest = hashlib.sha256()
        size = 0
        try:
            with out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(
                            f"the file is larger than the limit of {max_bytes} bytes "
                            "(PODIUM_MAX_FILE_BYTES)",
                            field="file",
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.dir / file_id)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Written(file_id, size, digest.hexdigest())

    def write_bytes(self, data: bytes) -> Written:
        return self.write([data])

    def write_from(self, source: IO[bytes], max_bytes: int | None = None) -> Written:
        """`write` from an open binary file (an upload, spooled by the web server), read in
        `CHUNK`s; blocking: the API calls it in a worker thread, never on its event loop."""
        return self.write(iter(lambda: source.read(CHUNK), b""), max_bytes)

    def read_bytes(self, file_id: str) -> bytes:
        try:
            return self.path(file_id).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"file {file_id!r} not found", field="file_id") from None

    def iter_bytes(self, file_id: str, chunk: int = CHUNK) -> Iterator[bytes]:
        try:
            handle = self.path(file_id).open("rb")
        except FileNotFoundError:
            raise NotFound(f"file {file_id!r} not found", field="file_id") from None
        with handle:
            while data := handle.read(chunk):
                yield data

    def iter_lines(self, file_id: str) -> Iterator[bytes]:
        """The file's lines (without their line ends), read a line at a time."""
        with self._open(file_id) as handle:
            for line in handle:
                yield line.rstrip(b"\r\n")

    def iter_bounded_lines(self, file_id: str, max_line: int) -> Iterator[bytes | LongLine]:
        """Like `iter_lines`, but a line longer than `max_line` bytes is never held whole:
        it comes as a `LongLine`, its bytes skipped to its end in `CHUNK`s, so memory stays
        within `max_line` whatever the input (a 512 MiB file on one line)."""
        with self._open(file_id) as handle:
            while line := handle.readline(max_line + 2):  # + its line end (\r\n)
                content = line.rstrip(b"\r\n")
                if line.endswith(b"\n") or len(line) < max_line + 2:  # the whole line
                    yield content if len(content) <= max_line else LongLine(max_line)
                    continue
                while (rest := handle.readline(CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield LongLine(max_line)

    def _open(self, file_id: str) -> IO[bytes]:
        try:
            return self.path(file_id).open("rb")
        except FileNotFoundError:
            raise NotFound(f"file {file_id!r} not found", field="file_id") from None

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)


class FileRepo:
    """The rows of files (UnitOfWork attribute `files`)."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def create(
        self,
        written: Written,
        *,
        project: str,
        filename: str,
        purpose: FilePurpose,
        content_type: str = "application/octet-stream",
        token_id: str | None = None,
        ttl_s: float | None = None,
    ) -> FileView:
        now = self._clock.now().timestamp()
        values: dict[str, Any] = {
            "id": written.id,
            "project": project,
            "filename": filename[:MAX_FILENAME],
            "purpose": purpose.value,
            "bytes": written.bytes,
            "sha256": written.sha256,
            "content_type": content_type[:128],
            "token_id": token_id,
            "created_at": now,
            "expires_at": None if ttl_s is None else now + ttl_s,
        }
        self._s.execute(insert(_F).values(**values))
        return _view(values)

    def get(self, file_id: str) -> FileView:
        row = self._s.execute(select(_F).where(_F.c.id == file_id)).first()
        if row is None:
            raise NotFound(f"file {file_id!r} not found", field="file_id")
        return _view(row._mapping)

    def list(
        self,
        projects: frozenset[str] | None = None,
        purpose: FilePurpose | None = None,
        limit: int = 100,
    ) -> builtins.list[FileView]:
        """Newest first; `projects` None: every project."""
        query = select(_F).order_by(_F.c.created_at.desc(), _F.c.id.desc()).limit(limit)
        if projects is not None:
            query = query.where(_F.c.project.in_(sorted(projects)))
        if purpose is not None:
            query = query.where(_F.c.purpose == purpose.value)
        return [_view(r._mapping) for r in self._s.execute(query).all()]

    def delete(self, file_id: str) -> None:
        done = self._s.execute(delete(_F).where(_F.c.id == file_id))
        if getattr(done, "rowcount", 1) == 0:
            raise NotFound(f"file {file_id!r} not found", field="file_id")

    def expired(self, limit: int = 500) -> builtins.list[str]:
        """Ids of files whose `expires_at` passed (oldest first)."""
        now = self._clock.now().timestamp()
        rows = self._s.execute(
            select(_F.c.id)
            .where(_F.c.expires_at.is_not(None), _F.c.expires_at < now)
            .order_by(_F.c.expires_at)
            .limit(limit)
        ).all()
        return [r.id for r in rows]


def save_result(
    uow: Any,
    store: FileStore,
    *,
    project: str,
    data: bytes,
    content_type: str,
    token_id: str | None = None,
    ttl_s: float | None = None,
) -> FileId:
    """Store a task's result as a file (`FilePurpose.TASK_RESULT`); returns its id, for
    `Outcome.result_file`. The bytes are written before the row, in the caller's unit of
    work (`uow.files`)."""
    written = store.write_bytes(data)
    uow.files.create(
        written,
        project=project,
        filename="result",
        purpose=FilePurpose.TASK_RESULT,
        content_type=content_type,
        token_id=token_id,
        ttl_s=ttl_s,
    )
    return written.id


class TaskResultFiles:
    """The dispatcher's two file hooks (`TaskDispatcher(save_result=…, delete_files=…)`):
    a task result too large (or not JSON) to keep inline becomes a file; the results of
    expired tasks are deleted (row, then bytes). `db` is the server's `Database`."""

    def __init__(self, db: Any, store: FileStore) -> None:
        self._db = db
        self._store = store

    def save_result(self, claimed: Any, data: bytes, content_type: str | None) -> str:
        """`claimed` is the `store.tasks.Claimed` whose answer this is; returns the file id."""
        with self._db.unit_of_work() as uow:
            return save_result(
                uow,
                self._store,
                project=claimed.project,
                data=data,
                content_type=content_type or "application/octet-stream",
                token_id=claimed.token_id,
            )

    def delete_files(self, file_ids: builtins.list[str]) -> None:
        for file_id in file_ids:
            try:
                with self._db.unit_of_work() as uow:
                    uow.files.delete(file_id)
            except NotFound:
                pass  # deleted already (or never recorded): its bytes may still be there
            self._store.delete(file_id)


def _view(m: Any) -> FileView:
    return FileView(
        id=m["id"],
        project=m["project"],
        filename=m["filename"],
        purpose=FilePurpose(m["purpose"]),
        bytes=m["bytes"],
        sha256=m["sha256"],
        content_type=m["content_type"],
        token_id=m["token_id"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
    )
