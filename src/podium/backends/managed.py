"""What the local backend remembers about one replica process it watches."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

from podium.backends import processes, zygote_pool
from podium.backends.base import ObservedReplica
from podium.core.phases import ExitReason

HOST = "127.0.0.1"


@dataclass(slots=True)
class ManagedReplica:
    """One replica process this backend watches."""

    replica_id: str
    endpoint: str
    revision: int
    port: int
    pid: int
    started_at: datetime
    log_path: Path
    status_path: Path
    popen: subprocess.Popen[bytes] | None = None  # ours: exit code and reaping via Popen
    proc: psutil.Process | None = None  # adopted: exit detection via psutil
    memory_mb: int | None = None
    instance_type: str = ""
    stop_deadline: float | None = None  # set by stop(); SIGKILL once passed
    escalated: bool = False
    kill_reason: ExitReason | None = None  # set by kill() and by the memory check
    kill_error: str | None = None
    start_mode: str = "spawn"  # or "fork": a child of a zygote (zygote_pool.py)
    launched_at: float = 0.0  # wall clock when the process was asked for
    forked_by: zygote_pool.Zygote | None = None  # our fork: the zygote reaps it, knows its code

    def observed(self) -> ObservedReplica:
        """The replica as alive."""
        return self._view(alive=True)

    def exited(self, code: int | None, reason: ExitReason, error: str | None) -> ObservedReplica:
        """The one report of the replica's exit."""
        return self._view(alive=False, exit_code=code, exit_reason=reason, error=error)

    def _view(
        self,
        *,
        alive: bool,
        exit_code: int | None = None,
        exit_reason: ExitReason | None = None,
        error: str | None = None,
    ) -> ObservedReplica:
        return ObservedReplica(
            replica_id=self.replica_id,
            endpoint=self.endpoint,
            revision=self.revision,
            host=HOST,
            port=self.port,
            pid=self.pid,
            started_at=self.started_at,
            log_location=str(self.log_path),
            alive=alive,
            exit_code=exit_code,
            exit_reason=exit_reason,
            error=error,
            start_mode=self.start_mode,
        )

    def running(self) -> bool:
        """True while the pid still names our process (safe to signal)."""
        if self.popen is not None:
            return self.popen.returncode is None
        return self.proc is not None and not processes.has_exited(self.proc)
