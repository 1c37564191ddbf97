"""Replica logs: the recent lines of an endpoint's replicas, or a live follow of them.

Logs are read only through the backend (`backends.base.ReplicaLogs`), which knows where
they live: this module never opens a file. The replicas are the running ones (the store)
and those whose logs the backend still keeps (`kept_logs`: exited replicas and those of a
previous server, until the endpoint is deleted or the retention drops them), so the log of
a replica that failed stays readable, also with `?replica=ID`. Following asks the backend
for each replica's tail and a follower, then, every `poll_s`, for whatever was appended
since. Replicas that appear while following (scale up, rollout) are picked up from the
store and followed from their first line; the stream ends when the endpoint is gone or the
client disconnects. A follow is text (`follow`: `[replica-id] line` lines) or Server-Sent
Events (`follow_events`: numbered `line` events with JSON data, heartbeat comments); both
mask the project's secrets in every line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from podium.api.services import sse
from podium.backends.base import LogFollower, ReplicaLogs
from podium.core import redact
from podium.core.errors import NotFound
from podium.core.schemas import LogLine, LogReplica
from podium.store import Database
from podium.store.records import ReplicaRecord
from podium.store.secret_box import SecretBox

_REFRESH_EVERY = 4  # polls between looks for new replicas
HEARTBEAT_S = 10.0  # an SSE follow sends a comment this often while no line comes
RETRY_MS = 2000  # an SSE client reconnects after this long (the `retry:` field)

EXITED = "exited"  # the state shown for a replica that is gone but whose log is kept


@dataclass(frozen=True, slots=True)
class LoggedReplica:
    """A replica whose log can be read: running, or exited with its log kept."""

    replica_id: str
    state: str

    def public(self) -> LogReplica:
        return LogReplica(replica_id=self.replica_id, state=self.state)


def known(running: Sequence[ReplicaRecord], kept: Sequence[str]) -> list[LoggedReplica]:
    """Exited replicas with a kept log (`kept`: the backend's, oldest first), then running
    ones (by id)."""
    live = {r.replica_id: LoggedReplica(r.replica_id, r.state.value) for r in running}
    past = [LoggedReplica(rid, EXITED) for rid in kept if rid not in live]
    return past + [live[k] for k in sorted(live)]


def pick(replicas: Sequence[LoggedReplica], replica: str | None) -> list[LoggedReplica]:
    """The endpoint's replicas, or the one asked for (NotFound, field "replica")."""
    if replica is None:
        return list(replicas)
    chosen = [r for r in replicas if r.replica_id == replica]
    if not chosen:
        raise NotFound(f"the endpoint has no replica {replica!r}", field="replica")
    return chosen


Mask = Callable[[str], str]  # a line as the client may see it (secret values hidden)


def _unmasked(line: str) -> str:
    return line


def recent(
    source: ReplicaLogs, replicas: Sequence[LoggedReplica], tail: int, mask: Mask = _unmasked
) -> list[LogLine]:
    """Each replica's last `tail` lines, replica after replica (in the order given)."""
    items: list[LogLine] = []
    for r in replicas:
        items += [
            LogLine(replica_id=r.replica_id, line=mask(line))
            for line in source.logs(r.replica_id, tail)
        ]
    return items


def secret_mask(db: Database, key_path: Path, project: str) -> Mask:
    """What hides the values of `project`'s secrets in log lines: a replica runs user code,
    which may print what it was given (`env_from_secrets`). The replica's own log file keeps
    what it wrote; only what the API answers is masked. A secret that cannot be decrypted
    is `Unavailable`: no log is shown rather than one that may hold it."""
    with db.unit_of_work(read_only=True) as uow:
        names = [r.name for r in uow.secrets.list([project])]
        ciphertexts = {n: uow.secrets.get_ciphertext(project, n) for n in names}
    if not ciphertexts:
        return _unmasked
    box = SecretBox(key_path)
    known = redact.Secrets(box.decrypt(ct, name=n) for n, ct in ciphertexts.items())
    return known.text


Chunk = tuple[str, list[str]] | None  # a replica's new lines, or None: a poll found none


async def _chunks(
    db: Database,
    source: ReplicaLogs,
    endpoint: str,
    replicas: Sequence[LoggedReplica],
    *,
    tail: int,
    poll_s: float,
    only: str | None,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[Chunk]:
    """The tail of each replica, then new lines as they come, per replica; None after each
    poll that found nothing new (a stream's chance to send a heartbeat)."""
    followed: dict[str, LogFollower] = {}
    for r in replicas:
        lines, followed[r.replica_id] = await anyio.to_thread.run_sync(
            source.follow_logs, r.replica_id, tail
        )
        if lines:
            yield r.replica_id, lines
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
                    _, followed[new.replica_id] = await anyio.to_thread.run_sync(
                        source.follow_logs, new.replica_id, None
                    )
        idle = True
        for replica_id, follower in followed.items():
            lines = await anyio.to_thread.run_sync(follower.read_new)
            if lines:
                idle = False
                yield replica_id, lines
        if idle:
            yield None


async def follow(
    db: Database,
    source: ReplicaLogs,
    endpoint: str,
    replicas: Sequence[LoggedReplica],
    *,
    tail: int,
    poll_s: float,
    only: str | None,
    disconnected: Callable[[], Awaitable[bool]],
    mask: Mask = _unmasked,
) -> AsyncIterator[str]:
    """Lines as `[replica-id] text\\n`: the tail of each replica, then new lines as they come."""
    chunks = _chunks(
        db, source, endpoint, replicas, tail=tail, poll_s=poll_s, only=only,
        disconnected=disconnected,
    )  # fmt: skip
    async for chunk in chunks:
        if chunk is not None:
            yield mask(_format(*chunk))


async def follow_events(
    db: Database,
    source: ReplicaLogs,
    endpoint: str,
    replicas: Sequence[LoggedReplica],
    *,
    tail: int,
    poll_s: float,
    only: str | None,
    disconnected: Callable[[], Awaitable[bool]],
    mask: Mask = _unmasked,
    after_id: int = 0,
    heartbeat_s: float | None = None,
) -> AsyncIterator[str]:
    """The same lines as Server-Sent Events (`sse`): one `line` event per line, numbered on
    from `after_id`, and a comment every `heartbeat_s` (`HEARTBEAT_S`) while nothing is
    written, so a proxy does not close the idle stream and a client notices a dead one."""
    every = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
    yield sse.retry(RETRY_MS)
    chunks = _chunks(
        db, source, endpoint, replicas, tail=tail, poll_s=poll_s, only=only,
        disconnected=disconnected,
    )  # fmt: skip
    event_id = after_id
    quiet_since = anyio.current_time()
    async for chunk in chunks:
        if chunk is None:
            if anyio.current_time() - quiet_since >= every:
                quiet_since = anyio.current_time()
                yield sse.comment("heartbeat")
            continue
        replica_id, lines = chunk
        frames = []
        for line in lines:
            event_id += 1
            data = {"replica": replica_id, "line": mask(line)}
            frames.append(sse.event(sse.LINE, data, event_id))
        quiet_since = anyio.current_time()
        yield "".join(frames)


def _replicas(db: Database, endpoint: str) -> list[ReplicaRecord]:
    with db.unit_of_work(read_only=True) as uow:
        uow.endpoints.get(endpoint)
        return uow.replicas.list(endpoint=endpoint)


def _format(replica_id: str, lines: list[str]) -> str:
    return "".join(f"[{replica_id}] {line}\n" for line in lines)
