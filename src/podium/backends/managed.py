"""What the local backend remembers about one replica process it watches, and how its end
reads (`verdict`: the exit reason and error; `cause`: a few words for the gateway)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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
    cpus: float | None = None  # its size, when it was started here (adopted: by type name)
    gpus: int | None = None
    visible_devices: str | None = None  # its CUDA_VISIBLE_DEVICES (None: not known)
    stop_deadline: float | None = None  # set by stop(); SIGKILL once passed
    escalated: bool = False
    kill_reason: ExitReason | None = None  # set by kill() and by the memory check
    kill_error: str | None = None
    start_mode: str = "spawn"  # or "fork": a child of a zygote (zygote_pool.py)
    launched_at: float = 0.0  # wall clock when the process was asked for
    forked_by: zygote_pool.Zygote | None = None  # our fork: the zygote reaps it, knows its code
    # A container replica (`containers.py`): its container's name; `pid` / `popen` / `proc`
    # are then the engine's attached `run` client, or, when a later server adopted the
    # container alone (`has_client` False), the container's main process.
    container: str | None = None
    container_pid: int | None = None  # the container's main process on this host
    has_client: bool = True
    # The container's kernel OOM kills seen when it started (or was adopted); None: its
    # memory cgroup is not its own, or not readable, and no count is watched.
    oom_kills: int | None = None
    log_follower: subprocess.Popen[bytes] | None = None  # `ENGINE logs -f` of an adopted one

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

    def verdict(
        self, code: int | None, status: dict[str, Any], stop_timeout_s: float
    ) -> tuple[ExitReason, str | None]:
        """Why the process ended, and the error to report, from its exit `code`, its status
        file and what this backend did to it (a stop, a kill)."""
        if status.get("state") == "out_of_memory":  # a request ran over the kernel limit
            # The replica's own word wins over a kill: after an OOM it stops listening, so
            # liveness may fail and the controller kill it as unhealthy.
            return ExitReason.OOM, (
                f"a request needed more memory than the kernel limit allows; limit "
                f"{self.memory_mb} MiB (instance type {self.instance_type or 'unknown'})"
            )
        if self.kill_reason is not None:
            return self.kill_reason, self.kill_error or f"killed: {processes.describe_exit(code)}"
        if self.stop_deadline is not None:
            if self.escalated:
                return (
                    ExitReason.STOPPED,
                    f"did not exit within {stop_timeout_s:g}s of SIGTERM; killed",
                )
            return ExitReason.STOPPED, None
        if status.get("state") == "load_failed":  # its loader's word: never the exit code
            return ExitReason.LOAD_FAILED, str(status.get("error") or "") or self._crash_error(code)
        return ExitReason.CRASHED, self._crash_error(code)

    def _crash_error(self, code: int | None) -> str:
        """One line (the event that reports the exit carries the log's last lines)."""
        if code is not None or self.popen is not None:
            return processes.describe_exit(code)
        return "exited; exit code unknown (adopted from an earlier server)"

    @property
    def measured_pid(self) -> int | None:
        """The root of the process tree its memory and CPU are measured on: the container's
        main process for a container replica (None until it is known), else `pid`."""
        if self.container is None:
            return self.pid
        return self.container_pid if self.container_pid else None

    def stop_log_follower(self) -> None:
        follower, self.log_follower = self.log_follower, None
        if follower is not None and follower.poll() is None:
            follower.terminate()
            try:
                follower.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                follower.kill()
                follower.wait(timeout=2.0)

    def running(self) -> bool:
        """True while the pid still names our process (safe to signal)."""
        if self.popen is not None:
            return self.popen.returncode is None
        return self.proc is not None and not processes.has_exited(self.proc)


def cause(reason: ExitReason, error: str | None, code: int | None) -> str:
    """`ran out of memory (used 300 MiB, limit 256 MiB …)`, `crashed (exit code -11 …)`."""
    if reason is ExitReason.OOM:
        return f"it ran out of memory ({error})" if error else "it ran out of memory"
    first = (error or "").split("\n", 1)[0] or processes.describe_exit(code)
    return f"{reason.value}: {first}"


def remove_status(path: Path) -> None:
    path.unlink(missing_ok=True)
    zygote_pool.remove_fork_record(path)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)  # left by a replica killed mid-write


def wait_exited(replicas: list[ManagedReplica], deadline: float) -> bool:
    """Wait (real time) until every replica has exited, reaping them; False on timeout."""
    while True:
        alive = False
        for r in replicas:
            if r.popen is not None:
                alive |= r.popen.poll() is None
            elif r.proc is not None and not processes.has_exited(r.proc):
                alive = True
            else:
                processes.reap(r.pid)
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
