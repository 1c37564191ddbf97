"""The local backend's container runtime without an engine: which kernel OOM kills count as
a container replica's (`container_runtime.oom_base`, `LocalBackend._check_container_oom`,
only those of a memory cgroup of the container's own; a fake /proc and /sys/fs/cgroup under
tmp_path stand for the machine's), the secret files a killed server left, and a poll pass
with an engine that does not answer (a stand-in program that sleeps)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from podium.backends import container_runtime
from podium.backends.container_engine import ContainerEngine
from podium.backends.container_runtime import ContainerState
from podium.backends.local import _PassEngine
from podium.backends.managed import ManagedReplica
from podium.core.phases import ExitReason
from podium.core.settings import ContainerSettings, Settings
from tests.unit.backends.conftest import SyncLocal

PID = 4242
LIMIT_MB = 256


class Machine:
    """/proc/PID/cgroup and the cgroup files it names (cgroup v2)."""

    def __init__(self, root: Path) -> None:
        self.proc, self.cgroup = root / "proc", root / "cgroup"

    def place(self, pid: int, path: str) -> None:
        (self.proc / str(pid)).mkdir(parents=True, exist_ok=True)
        (self.proc / str(pid) / "cgroup").write_text(f"0::{path}\n", encoding="utf-8")

    def group(self, path: str, *, limit_mb: int | None, kills: int | None) -> None:
        folder = self.cgroup / path.lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        limit = "max" if limit_mb is None else str(limit_mb * 1024 * 1024)
        (folder / "memory.max").write_text(limit + "\n", encoding="utf-8")
        events = folder / "memory.events"
        if kills is None:
            events.unlink(missing_ok=True)
        else:
            events.write_text(f"oom 0\noom_kill {kills}\n", encoding="utf-8")


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Machine:
    m = Machine(tmp_path)
    monkeypatch.setattr(container_runtime, "_PROC_ROOT", m.proc)
    monkeypatch.setattr(container_runtime, "_CGROUP_ROOT", m.cgroup)
    return m


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SyncLocal]:
    b = SyncLocal(Settings(home=tmp_path / "home"))
    yield b
    b.close()


@pytest.fixture
def client() -> Iterator[subprocess.Popen[bytes]]:
    """Stands for the engine's `run` client (a live process the replica is watched by)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def container_replica(tmp_path: Path, client: subprocess.Popen[bytes]) -> ManagedReplica:
    return ManagedReplica(
        replica_id="ctr-r1-x",
        endpoint="ctr",
        revision=1,
        port=1,
        pid=client.pid,
        started_at=datetime.now(UTC),
        log_path=tmp_path / "log",
        status_path=tmp_path / "status",
        popen=client,
        memory_mb=LIMIT_MB,
        instance_type="cpu-small",
        container="podium-ctr-r1-x",
    )


def find_pid(backend: SyncLocal, replica: ManagedReplica, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend learns the container's main process (`_find_container_pid`) from an
    engine that says it runs as PID."""
    runtime = backend.containers
    monkeypatch.setattr(runtime, "found", lambda: object())
    running = ContainerState(running=True, pid=PID, exit_code=0, oom_killed=False, labels={})
    monkeypatch.setattr(runtime, "state", lambda *a, **k: running)
    backend._find_container_pid(replica, _PassEngine(runtime))
    assert replica.container_pid == PID


def test_a_shared_cgroups_oom_kills_are_not_the_containers(
    machine: Machine,
    backend: SyncLocal,
    client: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No cgroup per container: its process is in the session's cgroup, this server's too.
    machine.place(PID, "/process_api/session")
    machine.place(os.getpid(), "/process_api/session")
    machine.group("/process_api/session", limit_mb=None, kills=0)
    replica = container_replica(tmp_path, client)
    find_pid(backend, replica, monkeypatch)
    assert replica.oom_kills is None
    machine.group("/process_api/session", limit_mb=None, kills=2)  # someone else's OOM kill
    backend._check_container_oom(replica, LIMIT_MB)
    assert replica.kill_reason is None
    # The same when the shared cgroup's limit happens to equal the instance type's.
    machine.group("/process_api/session", limit_mb=LIMIT_MB, kills=2)
    assert backend.containers.oom_base(PID, LIMIT_MB) is None


def test_a_process_in_this_servers_cgroup_is_not_counted(
    backend: SyncLocal,
    client: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This machine's real /proc: the client, standing for a container's main process that
    got no cgroup of its own, shares this process's memory cgroup (mirrored under a fake
    cgroup root, which a kernel OOM kill elsewhere then bumps)."""
    v1, folder = "", ""
    for line in Path(f"/proc/{client.pid}/cgroup").read_text(encoding="utf-8").splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            v1, folder = "memory", path
        elif line.startswith("0::") and not v1:
            folder = path
    group = tmp_path / "cgroup" / v1 / folder.lstrip("/")
    group.mkdir(parents=True)
    counter = group / ("memory.oom_control" if v1 else "memory.events")
    counter.write_text("oom_kill 0\n", encoding="utf-8")
    (group / ("memory.limit_in_bytes" if v1 else "memory.max")).write_text("max\n")
    monkeypatch.setattr(container_runtime, "_CGROUP_ROOT", tmp_path / "cgroup")
    replica = container_replica(tmp_path, client)
    runtime = backend.containers
    monkeypatch.setattr(runtime, "found", lambda: object())
    running = ContainerState(running=True, pid=client.pid, exit_code=0, oom_killed=False, labels={})
    monkeypatch.setattr(runtime, "state", lambda *a, **k: running)
    backend._find_container_pid(replica, _PassEngine(runtime))
    counter.write_text("oom_kill 1\n", encoding="utf-8")  # another process of the session
    monkeypatch.setattr(backend.backend, "_defer_container", lambda *a: None)
    backend._check_container_oom(replica, LIMIT_MB)
    assert replica.kill_reason is None


def test_a_cgroup_of_its_own_counts(
    machine: Machine,
    backend: SyncLocal,
    client: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine.place(PID, "/machine.slice/libpod-abc.scope")
    machine.place(os.getpid(), "/process_api/session")
    machine.group("/machine.slice/libpod-abc.scope", limit_mb=LIMIT_MB, kills=1)
    replica = container_replica(tmp_path, client)
    find_pid(backend, replica, monkeypatch)
    assert replica.oom_kills == 1
    backend._check_container_oom(replica, LIMIT_MB)
    assert replica.kill_reason is None  # its count did not go up
    machine.group("/machine.slice/libpod-abc.scope", limit_mb=LIMIT_MB, kills=2)
    monkeypatch.setattr(backend.backend, "_defer_container", lambda *a: None)
    backend._check_container_oom(replica, LIMIT_MB)
    assert replica.kill_reason is ExitReason.OOM


def test_an_unreadable_base_count_never_fires_later(
    machine: Machine,
    backend: SyncLocal,
    client: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine.place(PID, "/machine.slice/libpod-abc.scope")
    machine.group("/machine.slice/libpod-abc.scope", limit_mb=LIMIT_MB, kills=None)
    replica = container_replica(tmp_path, client)
    find_pid(backend, replica, monkeypatch)
    assert replica.oom_kills is None
    machine.group("/machine.slice/libpod-abc.scope", limit_mb=LIMIT_MB, kills=3)  # readable now
    backend._check_container_oom(replica, LIMIT_MB)
    assert replica.kill_reason is None


def test_a_limit_other_than_the_instance_types_is_not_its_own(machine: Machine) -> None:
    machine.place(PID, "/machine.slice/libpod-abc.scope")
    machine.group("/machine.slice/libpod-abc.scope", limit_mb=1024, kills=0)
    runtime = container_runtime.ContainerRuntime(ContainerSettings())
    assert runtime.oom_base(PID, LIMIT_MB) is None
    assert runtime.oom_base(PID, None) is None  # adopted: no podium.memory-mb label
    assert runtime.oom_base(PID, 1024) == 0


def test_a_new_backend_removes_secret_files_a_killed_server_left(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    run_dir = settings.run_dir
    auth = run_dir / "registry-auth-k3j2"
    auth.mkdir(parents=True)
    (auth / "auth.json").write_text('{"auths": {}}', encoding="utf-8")
    env = run_dir / "ctr-r1-abc.container.env"
    env.write_text("API_KEY=hunter2\n", encoding="utf-8")
    kept = run_dir / "ctr-r1-abc.status.json"
    kept.write_text("{}", encoding="utf-8")
    b = SyncLocal(settings)
    try:
        assert not auth.exists() and not env.exists()
        assert kept.exists()  # an adoptable replica's status stays
    finally:
        b.close()


def test_an_engine_that_does_not_answer_stalls_a_poll_by_seconds_not_minutes(
    tmp_path: Path, client: subprocess.Popen[bytes]
) -> None:
    slow = tmp_path / "podman"
    slow.write_text("#!/bin/sh\nexec sleep 60\n", encoding="utf-8")
    slow.chmod(0o755)
    settings = Settings(home=tmp_path / "home", containers=ContainerSettings(command_timeout_s=20))
    b = SyncLocal(settings)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    try:
        b.containers._engine = ContainerEngine(
            name="podman", program=str(slow), version="x", settings=settings.containers
        )
        late = container_replica(tmp_path, client)  # its container's pid not known yet
        gone = container_replica(tmp_path, ended)  # its client (and container) ended
        gone.replica_id, gone.container = "ctr-r1-y", "podium-ctr-r1-y"
        with b._lock:
            b._replicas[late.replica_id] = late
            b._replicas[gone.replica_id] = gone
        started = time.monotonic()
        out = {r.replica_id: r for r in b.poll()}
        took = time.monotonic() - started
        assert took < 6, f"a poll took {took:.1f}s"
        assert out["ctr-r1-x"].alive
        assert not out["ctr-r1-y"].alive and out["ctr-r1-y"].exit_code == 0
        started = time.monotonic()
        b.poll()  # the late one's inspect is asked again, bounded again
        assert time.monotonic() - started < 4
    finally:
        with b._lock:
            b._replicas.clear()
        b.close()
