"""One server per PODIUM_HOME, and a server that cannot listen touches no replica.

Both cases used to stop replicas that belonged to another server: a second `podium up` on
the same home adopted the first one's replicas (and stopped them when it exited), and a
server whose port was taken adopted the replicas a crashed server left, then stopped them
on its way out.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, free_port, wait_running

SAMPLE = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}


def _up(server: ServerProcess, port: int) -> tuple[int, list[str]]:
    """Run another `podium up` on `server`'s home; (exit status, non-empty output lines)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium", "up", "--port", str(port)],
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        raise AssertionError(f"the second server kept running:\n{out[-3000:]}") from None
    return proc.returncode, [line for line in out.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _deploy_iris(server: ServerProcess, models: Path) -> set[int]:
    with server.client() as c:
        c.push_model(train_iris_skops(models / "iris"), "iris", framework="sklearn")
        c.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
        ep = wait_running(c, "iris")
        return {r.pid for r in ep.replicas if r.pid is not None}


def test_a_second_server_on_one_home_exits_and_touches_nothing(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path / "home", free_port())
    first.start()
    try:
        pids = _deploy_iris(first, tmp_path)
        with first.client() as c:
            answer = c.invoke("iris", SAMPLE)

        status, lines = _up(first, free_port())

        assert status != 0
        assert len(lines) == 1, lines
        assert first.proc is not None
        assert f"pid {first.proc.pid}" in lines[0] and first.url in lines[0], lines[0]
        with first.client() as c:
            assert c.invoke("iris", SAMPLE) == answer
            assert {r.pid for r in c.endpoint("iris").replicas} == pids
        assert all(_alive(pid) for pid in pids)
    finally:
        first.stop()


def test_a_port_in_use_stops_the_server_before_it_adopts_anything(tmp_path: Path) -> None:
    crashed = ServerProcess(tmp_path / "home", free_port())
    crashed.start()
    try:
        pids = _deploy_iris(crashed, tmp_path)
    finally:
        crashed.stop(signal.SIGKILL)  # its replicas outlive it, waiting to be adopted
    taken = socket.socket()
    restarted = ServerProcess(crashed.home, free_port())
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        status, lines = _up(crashed, taken.getsockname()[1])

        assert status != 0
        assert len(lines) == 1, lines
        assert "address already in use" in lines[0].lower(), lines[0]
        assert all(_alive(pid) for pid in pids), "a server that could not listen stopped replicas"

        restarted.start()  # the next server that can listen adopts them, still serving
        with restarted.client() as c:
            ep = wait_running(c, "iris", timeout=60)
            assert {r.pid for r in ep.replicas} == pids
            c.invoke("iris", SAMPLE)
    finally:
        taken.close()
        restarted.stop()
        for pid in pids:  # a failed test must not leave replicas behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
