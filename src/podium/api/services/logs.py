"""Replica logs: the recent lines of an endpoint's replicas, or a live follow of them.

The replicas are the running ones (the store) and the exited ones whose log files are still
kept (`backends.logfiles`: they outlive their replica and the server, up to the retention),
so the log of a replica that failed stays readable, also with `?replica=ID`.
The recent lines come from the backend (`LogSource`), or from `logfiles.tail` for a file
the backend does not know: either way each line is cut to `logfiles.MAX_LINE_CHARS` and at
most `logfiles.TAIL_MAX_BYTES` are read. Following reads the replicas' log
files (`ReplicaRecord.log_path`) directly: the tail first, then, every `poll_s`, whatever
was appended since, one complete line at a time. Replicas that appear while following
(scale up, rollout) are picked up from the store; the stream ends when the endpoint is
gone or the client disconnects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread

from podium.backends import logfiles
from podium.core.errors import NotFound
from podium.core.schemas import LogLine, LogReplica
from podium.store import Database
from podium.store.records import ReplicaRecord

_READ_MAX = 1024 * 1024  # bytes read per replica per poll
_REFRESH_EVERY = 4  # polls between looks for new replicas


class LogSource(Protocol):
    """Where replica logs come from: anything with the backend's `logs` method."""

    def logs(self, replica_id: str, tail: int = 200) -> list[str]: ...


EXITED = "exited"  # the state shown for a replica that is gone but whose log is kept


@dataclass(frozen=True, slots=True)
class LoggedReplica:
    """A replica whose log can be read: running, or exited with its file kept."""

    replica_id: str
    log_path: str  # "" when unknown (the backend may still know it)
    state: str

    def public(self) -> LogReplica:
        return LogReplica(replica_id=self.replica_id, state=self.state)


def known(running: Sequence[ReplicaRecord], logs_dir: Path, endpoint: str) -> list[LoggedReplica]:
    """Exited replicas with a kept log file (oldest first), then running ones (by id)."""
    live = {
        r.replica_id: LoggedReplica(r.replica_id, r.log_path or "", r.state.value) for r in running
    }
    past = [
        LoggedReplica(f.replica_id, str(f.path), EXITED)
        for f in logfiles.list_files(logs_dir, endpoint)
        if f.replica_id not in live
    ]
    return past + [live[k] for k in sorted(live)]


def pick(replicas: Sequence[LoggedReplica], replica: str | None) -> list[LoggedReplica]:
    """The endpoint's replicas, or the one asked for (NotFound, field "replica")."""
    if replica is None:
        return list(replicas)
    chosen = [r for r in replicas if r.replica_id == replica]
    if not chosen:
        raise NotFound(f"the endpoint has no replica {replica!r}", field="replica")
    return chosen


def recent(source: LogSource, replicas: Sequence[LoggedReplica], tail: int) -> list[LogLine]:
    """Each replica's last `tail` lines, replica after replica (in the order given)."""
    items: list[LogLine] = []
    for r in replicas:
        lines = source.logs(r.replica_id, tail)
        if not lines and r.log_path:  # e.g. a replica this backend does not know (yet)
            lines = logfiles.tail_lines(Path(r.log_path), tail)
        items += [LogLine(replica_id=r.replica_id, line=line) for line in lines]
    return items


@dataclass
class _Followed:
    replica_id: str
    path: Path | None
    offset: int = 0
    partial: bytes = b""


async def follow(
    db: Database,
    source: LogSource,
    endpoint: str,
    replicas: Sequence[LoggedReplica],
    *,
    tail: int,
    poll_s: float,
    only: str | None,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Lines as `[replica-id] text\\n`: the tail of each replica, then new lines as they come."""
    followed: dict[str, _Followed] = {}
    for r in replicas:
        f, lines = await anyio.to_thread.run_sync(_start, source, r, tail)
        followed[r.replica_id] = f
        if lines:
            yield _format(r.replica_id, lines)
    polls = 0
    while True:
        await anyio.sleep(poll_s)
        if await disconnected():
            return
        polls += 1
        if only is None and polls % _REFRESH_EVERY == 0:
            try:
                current = await anyio.to_thread.run_sync(_replicas, db, endpoint)
            except NotFound:
                return
            for new in current:
                if new.replica_id not in followed:  # new: its whole log is news
                    followed[new.replica_id] = _Followed(new.replica_id, _path(new))
        for f in followed.values():
            lines = await anyio.to_thread.run_sync(_read_new, f)
            if lines:
                yield _format(f.replica_id, lines)


def _start(source: LogSource, r: LoggedReplica, tail: int) -> tuple[_Followed, list[str]]:
    path = _path(r)
    if path is None:  # no file to follow: the backend's tail, then nothing
        return _Followed(r.replica_id, None), source.logs(r.replica_id, tail)
    lines, offset = logfiles.tail(path, tail, complete=True)
    return _Followed(r.replica_id, path, offset), lines


def _replicas(db: Database, endpoint: str) -> list[ReplicaRecord]:
    with db.unit_of_work(read_only=True) as uow:
        uow.endpoints.get(endpoint)
        return uow.replicas.list(endpoint=endpoint)


def _path(r: ReplicaRecord | LoggedReplica) -> Path | None:
    return Path(r.log_path) if r.log_path else None


def _read_new(f: _Followed) -> list[str]:
    if f.path is None:
        return []
    try:
        size = f.path.stat().st_size
        if size < f.offset:  # truncated or replaced: start over
            f.offset, f.partial = 0, b""
        if size == f.offset:
            return []
        with f.path.open("rb") as fh:
            fh.seek(f.offset)
            data = fh.read(_READ_MAX)
    except OSError:
        return []
    f.offset += len(data)
    data = f.partial + data
    cut = data.rfind(b"\n") + 1
    f.partial = data[cut:]
    lines = data[:cut].decode("utf-8", errors="replace").splitlines()
    if len(f.partial) > _READ_MAX:  # a runaway line without an end: show it in pieces
        lines.append(f.partial.decode("utf-8", errors="replace"))
        f.partial = b""
    return lines


def _format(replica_id: str, lines: list[str]) -> str:
    return "".join(f"[{replica_id}] {line}\n" for line in lines)
