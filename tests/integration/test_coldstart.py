"""Cold starts through a real `podium up`: replicas fork from a warm zygote, each start's
phases are in the replica_ready event, and a forked replica outlives a server crash."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil

from podium.client import PodiumClient
from podium.core.phases import EndpointStatus, EventKind
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, free_port, wait_running, wait_until

PHASES = {"waiting", "fork", "import", "load", "listen", "first_response"}


def _zygote_ready(server: ServerProcess) -> bool:
    path = server.home / "run" / "zygote-python.log"
    return path.exists() and "zygote python: {" in path.read_text()


def _replica_pids(c: PodiumClient, name: str) -> set[int]:
    return {r.pid for r in c.endpoint(name).replicas if r.pid is not None}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_resume_forks_records_phases_and_survives_a_crash(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", free_port(), {"PODIUM_START_MODE": "fork"})
    server.start()
    pid = 0
    try:
        with server.client() as c:
            c.push_model(write_python_bundle(tmp_path / "bundle"), "echo", framework="python")
            c.deploy({"name": "echo", "model": "echo", "framework": "python"})
            wait_running(c, "echo")
            wait_until(lambda: _zygote_ready(server), what="the python zygote")

            c.pause("echo")
            c.wait_for("echo", {EndpointStatus.PAUSED}, timeout=60)
            wait_until(lambda: not _replica_pids(c, "echo"), what="the replica to stop")
            c.resume("echo")
            wait_running(c, "echo")

            ready = [e for e in c.events("echo") if e.kind == EventKind.REPLICA_READY]
            last = ready[-1]
            assert last.data["start_mode"] == "fork", last.message
            assert set(last.data["phases"]) == PHASES
            assert "(fork: waiting " in last.message
            (shown,) = c.endpoint("echo").replicas  # the same phases on the API
            assert shown.replica_id == last.data["replica_id"]
            assert shown.start_mode == "fork"
            assert shown.start_phases == last.data["phases"]
            assert shown.ready_s == last.data["ready_s"]

            (pid,) = _replica_pids(c, "echo")
            zygote = psutil.Process(pid).parent()
            assert zygote is not None and "podium.replica.zygote" in zygote.cmdline()
            assert server.proc is not None and zygote.ppid() == server.proc.pid
            answer = c.invoke("echo", {"inputs": "hi"})
            assert answer == {"version": 1, "echo": "hi"}

        # The server dies: its zygote exits (end of its socket), the forked replica does not,
        # and the next server adopts it.
        server.stop(signal.SIGKILL)
        wait_until(lambda: not _alive(zygote.pid), what="the zygote to exit")
        assert _alive(pid)
        server.start()
        with server.client() as c:
            wait_running(c, "echo", timeout=30)
            assert _replica_pids(c, "echo") == {pid}
            assert c.invoke("echo", {"inputs": "again"}) == {"version": 1, "echo": "again"}
            assert EventKind.REPLICA_ADOPTED in [e.kind for e in c.events("echo")]
    finally:
        server.stop()
    assert pid and not _alive(pid), "a graceful stop takes the adopted fork with it"
    assert not list((server.home / "run").glob("*.fork.json"))  # adoption records go too
