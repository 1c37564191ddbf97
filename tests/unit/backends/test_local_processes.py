"""LocalBackend process handling, driven by a stand-in replica (fake_replica.py): real OS
processes, signals and psutil, without loading any model."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import psutil
import pytest

from podium.backends import processes
from podium.backends.base import AdoptCandidate, ObservedReplica
from podium.core.clock import FakeClock
from podium.core.phases import ExitReason
from podium.core.settings import ControlSettings, Settings
from podium.core.spec import InstanceType
from tests.unit.backends.conftest import SyncLocal, launch, wait_exit, wait_exits, wait_for


def _log_has(b: SyncLocal, replica_id: str, text: str) -> bool:
    return any(text in line for line in b.logs(replica_id))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _candidate(r: ObservedReplica, *, pid: int | None = None, rid: str = "") -> AdoptCandidate:
    return AdoptCandidate(
        replica_id=rid or r.replica_id,
        endpoint=r.endpoint,
        revision=r.revision,
        host=r.host,
        port=r.port,
        pid=r.pid if pid is None else pid,
        started_at=r.started_at,
        log_location=r.log_location,
    )


def test_start_passes_socket_args_and_env_then_stop(settings: Settings, fake_python: str) -> None:
    b = SyncLocal(settings, python=fake_python)
    it = InstanceType(name="cpu-medium", cpus=2, memory_mb=4096)
    spec = launch("demo-r1-a", Path("/models/x"), instance_type=it, task="t", trust_pickle=True)
    r = b.start(spec)
    assert r.alive and r.host == "127.0.0.1" and r.port > 0 and r.pid
    assert r.log_location == str(settings.logs_dir / "demo" / "demo-r1-a.log")
    wait_for(lambda: _log_has(b, "demo-r1-a", "ready"), "the fake replica to start")
    argv = psutil.Process(r.pid).cmdline()
    assert "--port" not in argv  # the replica learns it from the inherited socket
    for flag, value in [("--threads", "2"), ("--task", "t")]:
        assert argv[argv.index(flag) + 1] == value
    assert "--trust-pickle" in argv and "--fd" in argv
    assert _log_has(b, "demo-r1-a", "threads=2 unbuffered=1")
    assert [o.replica_id for o in b.poll()] == ["demo-r1-a"]

    b.stop("demo-r1-a")
    report = wait_exit(b, "demo-r1-a")
    assert report.exit_reason == ExitReason.STOPPED and report.exit_code == -signal.SIGTERM
    assert b.logs("demo-r1-a")  # still readable after the replica is forgotten
    b.stop("demo-r1-a")  # unknown now: ignored
    b.close()


def test_stop_escalates_to_sigkill_after_the_stop_timeout(
    settings: Settings, fake_python: str
) -> None:
    clock = FakeClock()
    b = SyncLocal(settings, clock=clock, python=fake_python)
    r = b.start(launch("demo-r1-b", Path("/m"), env={"FAKE_MODE": "ignore_term"}))
    wait_for(lambda: _log_has(b, "demo-r1-b", "ready"), "SIGTERM to be ignored")
    b.stop("demo-r1-b")
    for _ in range(3):  # SIGTERM is ignored and the deadline has not passed
        assert [o.alive for o in b.poll()] == [True]
    clock.advance(settings.control.stop_timeout_s + 1)
    report = wait_exit(b, "demo-r1-b")
    assert report.exit_reason == ExitReason.STOPPED and report.exit_code == -signal.SIGKILL
    assert report.error and "did not exit within 10s" in report.error
    assert _gone(r.pid or 0)
    b.close()


def test_crash_reports_exit_code_and_log_tail(settings: Settings, fake_python: str) -> None:
    b = SyncLocal(settings, python=fake_python)
    b.start(launch("demo-r1-c", Path("/m"), env={"FAKE_MODE": "crash"}))
    report = wait_exit(b, "demo-r1-c")
    assert report.exit_reason == ExitReason.CRASHED and report.exit_code == 7
    assert report.error == "exit code 7"  # one line: the controller's event adds the log
    assert b.logs("demo-r1-c", 20)[-1] == "crash line 29"
    assert b.exit_cause("demo-r1-c") == "crashed: exit code 7"
    b.close()


def test_the_replicas_own_out_of_memory_wins_over_a_kill(
    settings: Settings, fake_python: str
) -> None:
    # After an OOM a replica stops itself and refuses connections: liveness may fail and
    # the controller kill it as unhealthy. The event must still say out of memory.
    b = SyncLocal(settings, python=fake_python)
    b.start(launch("demo-r1-o", Path("/m")))
    status = settings.run_dir / "demo-r1-o.status.json"
    status.write_text(json.dumps({"state": "out_of_memory"}), encoding="utf-8")
    b.kill("demo-r1-o", ExitReason.UNHEALTHY)
    report = wait_exit(b, "demo-r1-o")
    assert report.exit_reason is ExitReason.OOM
    assert report.error and "more memory than the kernel limit allows" in report.error
    b.close()


def test_exit_cause_never_waits_for_a_poll(
    settings: Settings, fake_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway's event loop asks exit_cause while poll walks process trees.
    b = SyncLocal(settings, python=fake_python)
    tiny = InstanceType(name="tiny", cpus=0.5, memory_mb=1000)
    b.start(launch("demo-r1-w", Path("/m"), instance_type=tiny))
    walking, release = threading.Event(), threading.Event()

    def slow_walk() -> dict[int, list[int]]:
        walking.set()
        release.wait(30)
        return {}

    monkeypatch.setattr(processes, "children_map", slow_walk)
    poller = threading.Thread(target=b.poll)
    poller.start()
    try:
        assert walking.wait(30)
        answered: list[str | None] = []
        asker = threading.Thread(target=lambda: answered.append(b.exit_cause("demo-r1-w")))
        asker.start()
        asker.join(10)
        assert answered == [None]  # answered while the poll still holds the backend
    finally:
        release.set()
        poller.join(30)
        b.close()  # also when the assertion failed: never leave the replica running


def test_load_failure_and_kill_reasons(settings: Settings, fake_python: str) -> None:
    b = SyncLocal(settings, python=fake_python)
    b.start(launch("demo-r1-d", Path("/m"), env={"FAKE_MODE": "load_failed"}))
    b.start(launch("demo-r1-e", Path("/m")))
    b.kill("demo-r1-e", ExitReason.UNHEALTHY)
    reports = wait_exits(b, "demo-r1-d", "demo-r1-e")
    failed = reports["demo-r1-d"]
    assert failed.exit_reason == ExitReason.LOAD_FAILED and failed.exit_code == 3
    assert failed.error == "RuntimeError: boom"
    assert not (settings.run_dir / "demo-r1-d.status.json").exists()
    killed = reports["demo-r1-e"]
    assert killed.exit_reason == ExitReason.UNHEALTHY and killed.exit_code == -signal.SIGKILL
    b.close()


def test_memory_limit_kills_with_oom(settings: Settings, fake_python: str) -> None:
    b = SyncLocal(settings, python=fake_python)
    tiny = InstanceType(name="tiny", cpus=0.5, memory_mb=100)
    env = {"FAKE_MODE": "alloc", "FAKE_ALLOC_MB": "200"}
    b.start(launch("demo-r1-f", Path("/m"), instance_type=tiny, env=env))
    report = wait_exit(b, "demo-r1-f")
    assert report.exit_reason == ExitReason.OOM and report.exit_code == -signal.SIGKILL
    assert report.error and report.error.endswith("limit 100 MiB (instance type tiny)")
    assert report.error.startswith("used ")
    b.close()


def test_children_of_a_replica_die_with_it(settings: Settings, fake_python: str) -> None:
    b = SyncLocal(settings, python=fake_python)
    b.start(launch("demo-r1-g", Path("/m"), env={"FAKE_MODE": "child"}))
    line = wait_for(
        lambda: next((x for x in b.logs("demo-r1-g") if x.startswith("child pid")), None),
        "the child to start",
    )
    child = int(line.split()[-1])
    b.stop("demo-r1-g")
    wait_exit(b, "demo-r1-g")
    wait_for(lambda: _gone(child), "the child to exit")
    b.close()


def test_adopt_checks_identity_and_takes_over(settings: Settings, fake_python: str) -> None:
    first = SyncLocal(settings, python=fake_python)
    r1 = first.start(launch("demo-r1-h", Path("/m")))
    r2 = first.start(launch("demo-r1-i", Path("/m")))
    wait_for(lambda: _log_has(first, "demo-r1-i", "ready"), "the fake replica to start")
    first.close(stop_replicas=False)
    assert first.poll() == []

    second = SyncLocal(settings, python=fake_python)
    bogus = [
        _candidate(r1, pid=os.getpid()),  # a live process, but not a replica
        _candidate(r1, rid="demo-r1-zzz"),  # a replica, but another one
        _candidate(r1, pid=0),
    ]
    assert second.adopt(bogus) == []
    adopted = second.adopt([_candidate(r1), _candidate(r2)])
    assert [(a.replica_id, a.alive, a.pid, a.port) for a in adopted] == [
        ("demo-r1-h", True, r1.pid, r1.port),
        ("demo-r1-i", True, r2.pid, r2.port),
    ]
    assert second.adopt([_candidate(r1)]) == []  # not twice
    polled = {o.replica_id: (o.alive, o.pid, o.exit_reason) for o in second.poll()}
    assert polled == {"demo-r1-h": (True, r1.pid, None), "demo-r1-i": (True, r2.pid, None)}
    assert not _gone(r1.pid or 0) and not _gone(r2.pid or 0)  # both processes still run

    second.stop("demo-r1-h")
    assert wait_exit(second, "demo-r1-h").exit_reason == ExitReason.STOPPED
    os.kill(r2.pid or 0, signal.SIGKILL)
    crashed = wait_exit(second, "demo-r1-i")
    assert crashed.exit_reason == ExitReason.CRASHED and crashed.error
    second.close()


def test_close_stops_everything(tmp_path: Path, fake_python: str) -> None:
    # Only what this test starts: the worker may run other tests' servers (the browser
    # tests' `podium up` lives for the whole session on the worker that ran them).
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    settings = Settings(home=tmp_path / "h", control=ControlSettings(stop_timeout_s=1.0))
    b = SyncLocal(settings, python=fake_python)
    pids = [
        b.start(launch(f"demo-r1-{m}", Path("/m"), env={"FAKE_MODE": m})).pid or 0
        for m in ("serve", "ignore_term", "child")
    ]
    wait_for(lambda: _log_has(b, "demo-r1-ignore_term", "ready"), "the fake replicas to start")
    b.close()
    assert b.poll() == []
    for pid in pids:
        assert _gone(pid)
    me = psutil.Process()
    left = [c for c in me.children(recursive=True) if c.pid not in before]
    assert not [c for c in left if c.status() != psutil.STATUS_ZOMBIE]


def test_logs_of_unknown_and_earlier_replicas(settings: Settings, tmp_path: Path) -> None:
    log = settings.logs_dir / "demo" / "demo-r1-old.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {i}\n" for i in range(5000)))
    b = SyncLocal(settings)
    assert b.replica_logs.path("demo-r1-old") == log  # found on disk: a previous server's replica
    assert b.logs("demo-r1-old", tail=3) == ["line 4997", "line 4998", "line 4999"]
    assert b.logs("nope") == [] and b.replica_logs.path("../etc") is None
