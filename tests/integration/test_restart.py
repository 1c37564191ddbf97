"""Restarting `podium up` loses nothing: endpoints, models, revisions and events persist."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from podium.core.phases import EventKind
from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, free_port, wait_running

SAMPLE = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}


def test_restart_serves_again_with_events_intact(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", free_port())
    server.start()
    try:
        with server.client() as c:
            c.push_model(train_iris_skops(tmp_path / "iris"), "iris", framework="sklearn")
            c.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
            wait_running(c, "iris")
            before = [(e.id, e.kind, e.message) for e in c.events("iris")]
            answer = c.invoke("iris", SAMPLE)

        # 1. Graceful restart: replicas are stopped with the server and started again.
        server.stop(signal.SIGTERM)
        server.start()
        with server.client() as c:
            wait_running(c, "iris")
            assert c.invoke("iris", SAMPLE) == answer
            after = [(e.id, e.kind, e.message) for e in c.events("iris")]
            assert after[: len(before)] == before
            assert [m.name for m in c.models()] == ["iris"]
            pids = {r.pid for r in c.endpoint("iris").replicas}

        # 2. Crash (SIGKILL): replicas outlive the server and are adopted by the next one.
        server.stop(signal.SIGKILL)
        for pid in pids:
            assert pid is not None
            os.kill(pid, 0)  # still alive
        server.start()
        with server.client() as c:
            ep = wait_running(c, "iris", timeout=30)
            assert {r.pid for r in ep.replicas} == pids
            assert all(_running(pid) for pid in pids if pid)  # adopted, not just remembered
            assert c.invoke("iris", SAMPLE) == answer
            kinds = [e.kind for e in c.events("iris")]
            assert EventKind.REPLICA_ADOPTED in kinds
    finally:
        server.stop()
    # A graceful stop takes its replicas with it (an exited replica whose parent was the killed
    # server may linger as a zombie until init reaps it: that is not running).
    for pid in pids:
        assert pid is not None
        assert not _running(pid), f"replica {pid} outlived a graceful server stop"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
