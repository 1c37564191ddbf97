"""Zygotes: replicas forked from a warm process, with real processes and real models."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from podium.backends import zygote_pool
from podium.backends.base import AdoptCandidate, ObservedReplica
from podium.core.phases import ExitReason
from podium.core.settings import Settings
from podium.core.spec import InstanceType
from podium.replica import zygote as wire
from tests.support.models import write_python_bundle
from tests.unit.backends.conftest import SyncLocal, launch, wait_exit, wait_for


def _ready(r: ObservedReplica) -> bool:
    try:
        return httpx.get(f"http://{r.host}:{r.port}/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _wait_ready(b: SyncLocal, r: ObservedReplica) -> None:
    def ready() -> bool:
        alive = {o.replica_id for o in b.poll() if o.alive}
        assert r.replica_id in alive, f"replica exited: {b.logs(r.replica_id)[-20:]}"
        return _ready(r)

    wait_for(ready, f"{r.replica_id} to be ready")


def _zygote_pid(b: SyncLocal, runtime: str = "python") -> int:
    assert b.zygotes.wait_ready(runtime, 60), "the zygote did not become ready"
    z = b.zygotes._families["python"].zygote
    assert z is not None
    return z.pid


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_python_bundle(tmp_path / "bundle")


@pytest.fixture
def forking(settings: Settings) -> Iterator[SyncLocal]:
    b = SyncLocal(settings, start_mode="fork")
    yield b
    b.close()


# ---------------------------------------------------------------------- pure parts


def test_messages_carry_descriptors_over_a_socketpair(tmp_path: Path) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b, (tmp_path / "f").open("wb") as f:
        big = {"op": "start", "env": {"X": "y" * 200_000}}  # more than one recv
        wire.send_message(a, big, [f.fileno()])
        got, fds = wire.recv_message(b)
        assert got == big and len(fds) == 1
        os.write(fds[0], b"through the passed descriptor")
        os.close(fds[0])
        a.close()
        with pytest.raises(wire.ChannelClosed):
            wire.recv_message(b)
    assert (tmp_path / "f").read_bytes() == b"through the passed descriptor"


def test_start_mode_and_which_launches_fork() -> None:
    assert zygote_pool.default_start_mode({"PODIUM_START_MODE": "spawn"}) == "spawn"
    assert zygote_pool.default_start_mode({"PODIUM_START_MODE": " FORK "}) == "fork"
    assert zygote_pool.default_start_mode({}) == "fork"  # Linux
    assert zygote_pool.default_start_mode({"PODIUM_START_MODE": "clone"}) == "fork"
    assert zygote_pool.family_of("sklearn") == "sklearn"
    assert zygote_pool.family_of("onnx") == "onnx"
    assert zygote_pool.family_of("command") is None
    env = {"HF_HOME": "/x", "LD_PRELOAD": "y", "GREETING": "hi", "OMP_NUM_THREADS": "2"}
    assert zygote_pool.import_time_vars(env) == ["HF_HOME", "LD_PRELOAD", "OMP_NUM_THREADS"]


def test_startup_report_from_status_times() -> None:
    status = {
        "start_mode": "fork",
        "times": {"main": 10.5, "imported": 10.6, "loaded": 11.0, "listening": 11.25},
    }
    report = zygote_pool.startup_report(status, "fork", launched_at=10.0)
    assert report.phases == {"fork": 0.5, "import": 0.1, "load": 0.4, "listen": 0.25}
    assert report.listening_at == 11.25
    partial = zygote_pool.startup_report({"times": {"main": 10.5}}, "spawn", launched_at=10.0)
    assert partial.phases == {"spawn": 0.5} and partial.listening_at is None


# ---------------------------------------------------------------------- real processes


def test_forked_replica_serves_in_its_own_session(forking: SyncLocal, bundle: Path) -> None:
    zpid = _zygote_pid(forking)
    r = forking.start(launch("demo-r1-a", bundle))
    assert r.start_mode == "fork" and r.pid is not None
    _wait_ready(forking, r)
    answer = httpx.post(f"http://{r.host}:{r.port}/", json={"inputs": "hi"}, timeout=30)
    assert answer.json() == {"version": 1, "echo": "hi"}

    child = psutil.Process(r.pid)
    assert child.ppid() == zpid  # forked by the zygote, not spawned by us
    assert os.getsid(r.pid) == r.pid and os.getpgid(r.pid) == r.pid
    assert psutil.Process(zpid).num_threads() == 1  # forking a threaded process is unsafe
    # It holds no end of the zygote's socket: only its own listening socket and uvicorn's.
    zygote_socks = {os.readlink(f"/proc/{zpid}/fd/{fd}") for fd in os.listdir(f"/proc/{zpid}/fd")}
    zygote_socks = {s for s in zygote_socks if s.startswith("socket:")}
    for fd in os.listdir(f"/proc/{r.pid}/fd"):
        target = os.readlink(f"/proc/{r.pid}/fd/{fd}")
        assert target not in zygote_socks, f"fd {fd} is the zygote's {target}"
    assert stat.S_ISREG(os.stat(f"/proc/{r.pid}/fd/1").st_mode)  # stdout: its log file
    assert os.readlink(f"/proc/{r.pid}/fd/1") == r.log_location
    # Signals as in a fresh interpreter: nothing blocked, SIGINT (ignored by the zygote) not.
    assert _signal_mask(r.pid, "SigBlk") == 0
    assert not _signal_mask(r.pid, "SigIgn") & (1 << (signal.SIGINT - 1))

    report = forking.startup("demo-r1-a")
    assert report is not None and report.start_mode == "fork"
    assert set(report.phases) == {"fork", "import", "load", "listen"}
    assert "demo-r1-a ready on" in "\n".join(forking.logs("demo-r1-a"))

    forking.stop("demo-r1-a")
    stopped = wait_exit(forking, "demo-r1-a")
    assert stopped.exit_reason == ExitReason.STOPPED and stopped.exit_code == 0


def _signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    return 0


def test_a_forked_replica_cannot_read_the_server_s_secrets_in_its_environment(
    settings: Settings, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc/PID/environ of a forked replica is what its zygote was started with: the
    # zygote must get the replica's inherited environment, not the server's.
    monkeypatch.setenv("PODIUM_TOKEN", "pod_0123456789ab_server-secret")
    monkeypatch.setenv("PODIUM_DATABASE_URL", "postgresql://u:pw@db/podium")
    monkeypatch.setenv("HF_TOKEN", "hf_server_token")
    b = SyncLocal(settings, start_mode="fork")
    try:
        _zygote_pid(b)
        r = b.start(launch("demo-r1-env", bundle, env={"GIVEN": "by-the-spec"}))
        assert r.start_mode == "fork" and r.pid is not None
        _wait_ready(b, r)
        # What the kernel shows of the process (a forked child's os.environ is set after
        # the fork, in memory; this is what it was started with).
        raw = Path(f"/proc/{r.pid}/environ").read_bytes()
    finally:
        b.close()
    for secret in (b"server-secret", b"pw@db", b"hf_server_token"):
        assert secret not in raw
    names = {item.split(b"=", 1)[0] for item in raw.split(b"\0") if item}
    assert not {b"PODIUM_TOKEN", b"PODIUM_DATABASE_URL", b"HF_TOKEN"} & names
    assert b"PATH" in names  # the rest of the environment is inherited


def test_exit_codes_of_forked_replicas(forking: SyncLocal, tmp_path: Path) -> None:
    _zygote_pid(forking)
    broken = write_python_bundle(tmp_path / "broken", fail_load="boom")
    forking.start(launch("demo-r1-b", broken))
    failed = wait_exit(forking, "demo-r1-b")
    assert failed.start_mode == "fork"
    assert failed.exit_reason == ExitReason.LOAD_FAILED and failed.exit_code == 3
    assert failed.error and "boom" in failed.error

    r = forking.start(launch("demo-r1-c", write_python_bundle(tmp_path / "ok")))
    _wait_ready(forking, r)
    os.kill(r.pid or 0, signal.SIGKILL)
    crashed = wait_exit(forking, "demo-r1-c")
    assert crashed.exit_reason == ExitReason.CRASHED and crashed.exit_code == -9


def test_memory_limit_counts_the_fork_not_its_zygote(forking: SyncLocal, tmp_path: Path) -> None:
    zpid = _zygote_pid(forking)
    hog = write_python_bundle(tmp_path / "hog", alloc_mb_on_predict=300)
    tiny = InstanceType(name="tiny", cpus=1, memory_mb=150)
    # The backend's RSS poll is what this tests (the kernel limit has tests of its own).
    off = {"PODIUM_MEMORY_RLIMIT": "off"}
    r = forking.start(launch("demo-r1-m", hog, instance_type=tiny, env=off))
    assert r.start_mode == "fork"
    _wait_ready(forking, r)
    assert zpid not in {c.pid for c in psutil.Process(r.pid).children(recursive=True)}
    assert [o.alive for o in forking.poll()] == [True]  # its shared pages fit in 150 MiB

    def predict() -> None:
        with contextlib.suppress(httpx.TransportError):  # killed while answering
            httpx.post(f"http://{r.host}:{r.port}/", json={"inputs": [1]}, timeout=60)

    caller = threading.Thread(target=predict, daemon=True)
    caller.start()
    report = wait_exit(forking, "demo-r1-m")
    assert report.exit_reason == ExitReason.OOM and report.exit_code == -9
    assert psutil.pid_exists(zpid) and not _zombie(zpid)  # the zygote was not charged
    caller.join(timeout=60)


def test_spawn_when_asked_or_when_env_is_read_at_import(
    settings: Settings, forking: SyncLocal, bundle: Path
) -> None:
    _zygote_pid(forking)
    r = forking.start(launch("demo-r1-d", bundle, env={"HF_HOME": str(settings.home)}))
    assert r.start_mode == "spawn"
    assert psutil.Process(r.pid).ppid() == os.getpid()

    spawning = SyncLocal(settings, start_mode="spawn")
    try:
        s = spawning.start(launch("demo-r1-e", bundle))
        assert s.start_mode == "spawn"
        _wait_ready(spawning, s)
        assert spawning.zygotes._families == {}  # no zygote was started
        report = spawning.startup("demo-r1-e")
        assert report is not None and set(report.phases) == {"spawn", "import", "load", "listen"}
    finally:
        spawning.close()


def test_prewarm_is_needed_only_without_a_live_zygote(
    forking: SyncLocal, settings: Settings
) -> None:
    """`prewarm` runs each pass for each endpoint: its thread hop is skipped while the
    family's zygote is importing or ready, and wherever there is nothing to warm."""
    pool = forking.zygotes
    assert pool.needs_prewarm("python") and not pool.needs_prewarm("command")
    forking.prewarm("python")
    assert not pool.needs_prewarm("python")  # importing: nothing to do
    pid = _zygote_pid(forking)
    assert not pool.needs_prewarm("python")  # ready
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pool.needs_prewarm("python"), "the dead zygote to need a prewarm")
    spawning = SyncLocal(settings, start_mode="spawn")
    try:
        assert not spawning.zygotes.needs_prewarm("python")
    finally:
        spawning.close()


def test_a_dead_zygote_means_spawning_and_forks_live_on(forking: SyncLocal, bundle: Path) -> None:
    zpid = _zygote_pid(forking)
    forked = forking.start(launch("demo-r1-f", bundle))
    assert forked.start_mode == "fork"
    os.kill(zpid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(zpid) or _zombie(zpid), "the zygote to die")

    r = forking.start(launch("demo-r1-g", bundle))
    assert r.start_mode == "spawn"  # the failure is logged; the zygote is retried later
    _wait_ready(forking, r)
    _wait_ready(forking, forked)  # the forked replica did not die with its zygote
    forking.stop("demo-r1-f")
    assert wait_exit(forking, "demo-r1-f").exit_reason == ExitReason.STOPPED


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_forked_replica_is_adopted_after_a_server_restart(settings: Settings, bundle: Path) -> None:
    first = SyncLocal(settings, start_mode="fork")
    zpid = _zygote_pid(first)
    r = first.start(launch("demo-r1-h", bundle))
    assert r.start_mode == "fork"
    _wait_ready(first, r)
    first.close(stop_replicas=False)  # as if the server died: its zygote goes, not the fork
    assert not psutil.pid_exists(zpid) or _zombie(zpid)

    second = SyncLocal(settings, start_mode="fork")
    try:
        candidate = AdoptCandidate(
            replica_id=r.replica_id,
            endpoint=r.endpoint,
            revision=r.revision,
            host=r.host,
            port=r.port,
            pid=r.pid,
            started_at=r.started_at,
            log_location=r.log_location,
        )
        wrong = dataclasses.replace(candidate, replica_id="demo-r1-zz")
        assert second.adopt([wrong]) == []  # another replica's id: the record does not match
        adopted = second.adopt([candidate])
        assert [(a.replica_id, a.start_mode) for a in adopted] == [("demo-r1-h", "fork")]
        assert _ready(r)
        second.stop("demo-r1-h")
        assert wait_exit(second, "demo-r1-h").exit_reason == ExitReason.STOPPED
    finally:
        second.close()


def test_transformers_zygote_forks_a_working_minilm(forking: SyncLocal) -> None:
    """torch is imported by the zygote with one thread and no thread pool; the forked
    replica sizes its own pools (2 CPUs here) and answers."""
    from tests.support.tiny_models import minilm_path

    assert forking.zygotes.wait_ready("transformers", 120)
    z = forking.zygotes._families["transformers"].zygote
    assert z is not None and psutil.Process(z.pid).num_threads() == 1
    medium = InstanceType(name="cpu-medium", cpus=2, memory_mb=4096)
    r = forking.start(
        launch(
            "mini-r1-a",
            minilm_path(),
            runtime="transformers",
            task="feature-extraction",
            instance_type=medium,
        )
    )
    assert r.start_mode == "fork"
    _wait_ready(forking, r)
    answer = httpx.post(f"http://{r.host}:{r.port}/", json={"inputs": ["a", "b"]}, timeout=60)
    assert answer.status_code == 200, answer.text
    vectors = answer.json()
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-3  # MiniLM's output is normalized
    assert psutil.Process(z.pid).num_threads() == 1  # the fork's pools are its own
