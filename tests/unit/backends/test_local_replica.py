"""LocalBackend with real `python -m podium.replica` processes and real models."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import httpx
import psutil
import pytest

from podium.backends.base import AdoptCandidate, ObservedReplica
from podium.core.phases import ExitReason
from podium.core.settings import Settings
from podium.core.spec import InstanceType
from tests.support.models import train_iris_skops, write_python_bundle
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


def _candidate(r: ObservedReplica, pid: int | None) -> AdoptCandidate:
    return AdoptCandidate(
        replica_id=r.replica_id,
        endpoint=r.endpoint,
        revision=r.revision,
        host=r.host,
        port=r.port,
        pid=pid,
        started_at=r.started_at,
        log_location=r.log_location,
    )


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_python_bundle(tmp_path / "bundle")


def test_iris_replica_serves_logs_and_stops(backend: SyncLocal, tmp_path: Path) -> None:
    model = train_iris_skops(tmp_path / "iris")
    r = backend.start(launch("iris-r1-a", model, runtime="sklearn"))
    _wait_ready(backend, r)
    answer = httpx.post(
        f"http://{r.host}:{r.port}/", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == [0]  # setosa
    assert f"replica iris-r1-a ready on http://127.0.0.1:{r.port}" in backend.logs("iris-r1-a")

    backend.stop("iris-r1-a")
    report = wait_exit(backend, "iris-r1-a")
    assert report.exit_reason == ExitReason.STOPPED and report.exit_code == 0


def test_sigkill_from_outside_is_a_crash(backend: SyncLocal, bundle: Path) -> None:
    r = backend.start(launch("demo-r1-a", bundle))
    _wait_ready(backend, r)
    os.kill(r.pid or 0, signal.SIGKILL)
    report = wait_exit(backend, "demo-r1-a")
    assert report.exit_reason == ExitReason.CRASHED and report.exit_code == -9
    assert report.error == "exit code -9 (signal SIGKILL)"  # the event adds the log's tail
    assert backend.logs("demo-r1-a", 20)


def test_load_failure(backend: SyncLocal, tmp_path: Path) -> None:
    broken = write_python_bundle(tmp_path / "broken", fail_load="boom")
    backend.start(launch("demo-r1-b", broken))
    report = wait_exit(backend, "demo-r1-b")
    assert report.exit_reason == ExitReason.LOAD_FAILED and report.exit_code == 3
    assert report.error and "boom" in report.error


def test_memory_limit(backend: SyncLocal, tmp_path: Path) -> None:
    hog = write_python_bundle(tmp_path / "hog", alloc_mb_on_predict=300)
    tiny = InstanceType(name="tiny", cpus=1, memory_mb=150)
    r = backend.start(launch("demo-r1-c", hog, instance_type=tiny))
    _wait_ready(backend, r)

    answers: list[httpx.Response] = []

    def predict() -> None:
        with contextlib.suppress(httpx.TransportError):  # killed while answering
            answers.append(
                httpx.post(f"http://{r.host}:{r.port}/", json={"inputs": [1]}, timeout=60)
            )

    caller = threading.Thread(target=predict, daemon=True)
    caller.start()
    report = wait_exit(backend, "demo-r1-c")
    # The kernel refused the allocation (RLIMIT_DATA): the request was answered 507, then
    # the replica stopped itself; without the rlimit the RSS poll kills it (SIGKILL).
    assert report.exit_reason == ExitReason.OOM and report.exit_code in (0, -9)
    assert report.error and report.error.endswith("limit 150 MiB (instance type tiny)")
    caller.join(timeout=60)
    if report.exit_code == 0:
        assert answers[0].status_code == 507
        assert "ran out of memory" in answers[0].json()["detail"]


def test_adopt_after_a_server_restart(settings: Settings, bundle: Path) -> None:
    first = SyncLocal(settings)
    r = first.start(launch("demo-r1-d", bundle))
    _wait_ready(first, r)
    first.close(stop_replicas=False)

    second = SyncLocal(settings)
    try:
        assert second.adopt([_candidate(r, os.getpid())]) == []  # pid is not a replica
        adopted = second.adopt([_candidate(r, r.pid)])
        assert [(a.replica_id, a.alive, a.port) for a in adopted] == [("demo-r1-d", True, r.port)]
        assert second.adopt([_candidate(r, r.pid)]) == []
        assert _ready(r)
        assert f"replica demo-r1-d ready on http://127.0.0.1:{r.port}" in second.logs("demo-r1-d")
        second.stop("demo-r1-d")
        assert wait_exit(second, "demo-r1-d").exit_reason == ExitReason.STOPPED
    finally:
        second.close()


def test_close_stops_everything(settings: Settings, bundle: Path) -> None:
    # Only what this test starts: the worker may run other tests' servers (the browser
    # tests' `podium up` lives for the whole session on the worker that ran them).
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    b = SyncLocal(settings)
    started = [b.start(launch(f"demo-r1-{i}", bundle)) for i in ("e", "f")]
    _wait_ready(b, started[0])
    b.close()
    assert b.poll() == []
    for r in started:
        assert not psutil.pid_exists(r.pid or 0) or (
            psutil.Process(r.pid).status() == psutil.STATUS_ZOMBIE
        )
    me = psutil.Process()
    left = [c for c in me.children(recursive=True) if c.pid not in before]
    assert not [c for c in left if c.status() != psutil.STATUS_ZOMBIE]
