"""The local backend's replica logs: files on this node, `logs_dir/<endpoint>/<replica>.log`.

`LocalLogs` is how everything above the backend reads them (`base.ReplicaLogs`): the
controller's crash events, the API's `GET …/logs` and `podium logs -f`. It remembers where
each replica it was told about logs (`open_for`, `remember`) and finds the others on disk
(`logfiles.find`: a replica of a previous server, or one that exited and was forgotten), so
a log stays readable as long as its file is kept.

It has a lock of its own, held only around its small table: reading a log never waits for
the backend's lock, which a start holds while a zygote forks and a poll while it walks
process trees.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path

from podium.backends import logfiles
from podium.backends.base import LogFollower


class LocalLogs:
    """Replica log files under `logs_dir`, newest `retention` kept per endpoint."""

    def __init__(self, logs_dir: Path, retention: int) -> None:
        self.logs_dir = logs_dir
        self.retention = retention
        self._lock = threading.Lock()
        self._paths: dict[str, Path] = {}  # every replica seen, for logs after exit

    def open_for(self, endpoint: str, replica_id: str) -> Path:
        """The log file a new replica writes to (its folder created); `Invalid` for ids that
        cannot name a file."""
        path = logfiles.path_for(self.logs_dir, endpoint, replica_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.remember(replica_id, path)
        return path

    def remember(self, replica_id: str, path: Path) -> None:
        """`replica_id` logs to `path` (an adopted replica: where the store says)."""
        with self._lock:
            self._paths[replica_id] = path

    def location(self, endpoint: str, replica_id: str, stored: str | None) -> Path:
        """Where an adopted replica logs: the location the store kept, else its usual file."""
        if stored:
            return Path(stored)
        return logfiles.path_for(self.logs_dir, endpoint, replica_id)

    def path(self, replica_id: str) -> Path | None:
        """The replica's log file (also for replicas of a previous server); None: no log."""
        with self._lock:
            known = self._paths.get(replica_id)
        return known if known is not None else logfiles.find(self.logs_dir, replica_id)

    # ------------------------------------------------------------------ ReplicaLogs

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        path = self.path(replica_id)
        return [] if path is None else logfiles.tail_lines(path, tail)

    def kept_logs(self, endpoint: str) -> list[str]:
        return [f.replica_id for f in logfiles.list_files(self.logs_dir, endpoint)]

    def follow_logs(self, replica_id: str, tail: int | None) -> tuple[list[str], LogFollower]:
        return logfiles.follow(self.path(replica_id), tail, lambda: self.path(replica_id))

    # ------------------------------------------------------------------ retention

    def prune(self, endpoint: str, protect: Collection[str]) -> None:
        """Keep the endpoint's newest `retention` log files (never those in `protect`: the
        running replicas')."""
        logfiles.prune(self.logs_dir, endpoint, self.retention, protect=protect)

    def forget_endpoint(self, endpoint: str) -> None:
        """The endpoint is deleted: its replicas' log files go with it."""
        logfiles.remove_endpoint(self.logs_dir, endpoint)
        with self._lock:
            for rid in [r for r, p in self._paths.items() if p.parent.name == endpoint]:
                del self._paths[rid]
