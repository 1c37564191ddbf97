"""A request that allocates far beyond the instance type's memory: the kernel limit stops
it at the limit, the client is told the replica ran out of memory, an `oom` event is
recorded and a fresh replica serves afterwards. With the kernel limit off, the backend's
poll kills the replica and the gateway's 502 says it ran out of memory."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

LIMIT_MB = 256
MARGIN_MB = 64  # what the kernel limit does not count (code, shared libraries)
MODEL = """\
import time

MiB = 1024 * 1024


class Model:
    def load(self, path):
        self.hoard = []

    def predict(self, inputs, parameters):
        if inputs == "hog":  # 600 MB, touched, at once
            self.hoard.append(b"\\x01" * (600 * MiB))
        if inputs == "creep":  # 600 MB, touched, 20 MB at a time
            for _ in range(30):
                self.hoard.append(b"\\x01" * (20 * MiB))
                time.sleep(0.05)
        return {"echo": inputs}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    small = {"name": "small", "cpus": 1, "memory_mb": LIMIT_MB, "price_per_hour": 0.01}
    with running_server(
        tmp_path_factory.mktemp("podium"),
        PODIUM_INSTANCE_TYPES=json.dumps([small]),
        PODIUM_RESTART_BACKOFF_S="0.2",
    ) as s:
        yield s


def deploy(server: ServerProcess, tmp_path: Path, name: str, env: dict[str, str]) -> int:
    bundle = tmp_path / name
    bundle.mkdir()
    (bundle / "model.py").write_text(MODEL, encoding="utf-8")
    with server.client() as c:
        c.push_model(bundle, name, framework="python")
        spec = {"name": name, "model": name, "framework": "python", "instance_type": "small"}
        c.deploy({**spec, "env": env})
        ep = wait_running(c, name)
    (replica,) = ep.replicas
    assert replica.pid is not None
    return replica.pid


class PeakRss:
    """The replica's peak resident memory: the kernel's VmHWM, read until it exits."""

    def __init__(self, pid: int) -> None:
        self.mb = 0.0
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with open(f"/proc/{self._proc.pid}/status", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.mb = max(self.mb, int(line.split()[1]) / 1024)
            except (OSError, ValueError):
                return
            self._stop.wait(0.01)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(10)
        return self.mb


def oom_events(server: ServerProcess, name: str) -> list[str]:
    with server.client() as c:
        return [e.message for e in c.events(name) if e.kind is EventKind.REPLICA_OOM]


def serves_again(server: ServerProcess, name: str, old_pid: int) -> None:
    """A replacement (another process than `old_pid`, which is gone) is ready and serves."""

    def ready() -> bool:
        with server.client() as c:
            ep = c.endpoint(name)
        return ep.status is EndpointStatus.RUNNING and any(
            r.state is ReplicaState.READY and r.pid != old_pid for r in ep.replicas
        )

    wait_until(ready, timeout=120, what="a replacement replica")
    with server.client() as c:
        assert c.invoke(name, {"inputs": "ping"}) == {"echo": "ping"}
        (replica,) = c.endpoint(name).replicas
    assert replica.pid != old_pid and replica.pid is not None and psutil.pid_exists(replica.pid)
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"


def test_kernel_limit_stops_an_allocation_at_the_limit(
    server: ServerProcess, tmp_path: Path
) -> None:
    pid = deploy(server, tmp_path, "hog", {})
    peak = PeakRss(pid)
    r = httpx.post(
        f"{server.url}/endpoints/hog/",
        headers=server.headers,
        json={"inputs": "hog"},
        timeout=60,
    )
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    peak_mb = peak.stop()
    assert r.status_code == 507, r.text
    assert r.json()["detail"] == (
        f"the replica ran out of memory serving this request (limit {LIMIT_MB} MiB)"
    )
    assert 0 < peak_mb < LIMIT_MB + MARGIN_MB, f"peak RSS {peak_mb:.0f} MiB"
    wait_until(lambda: len(oom_events(server, "hog")) == 1, what="an oom event")
    (message,) = oom_events(server, "hog")
    assert re.match(
        r"replica hog-r1-\w+ ran out of memory: a request needed more memory than the kernel "
        rf"limit allows; limit {LIMIT_MB} MiB \(instance type small\)",
        message,
    ), message
    serves_again(server, "hog", pid)


def test_polled_limit_kill_is_a_502_naming_out_of_memory(
    server: ServerProcess, tmp_path: Path
) -> None:
    pid = deploy(server, tmp_path, "creep", {"PODIUM_MEMORY_RLIMIT": "off"})
    r = httpx.post(
        f"{server.url}/endpoints/creep/",
        headers=server.headers,
        json={"inputs": "creep"},
        timeout=60,
    )
    assert r.status_code == 502, r.text
    detail = r.json()["detail"]
    assert re.fullmatch(
        "endpoint 'creep': the replica crashed while serving this request: it ran out of memory "
        rf"\(used \d+ MiB, limit {LIMIT_MB} MiB \(instance type small\)\)",
        detail,
    ), detail
    wait_until(lambda: len(oom_events(server, "creep")) == 1, what="an oom event")
    assert re.match(
        rf"replica creep-r1-\w+ ran out of memory: used \d+ MiB, limit {LIMIT_MB} MiB "
        r"\(instance type small\)",
        oom_events(server, "creep")[0],
    ), oom_events(server, "creep")[0]
    serves_again(server, "creep", pid)
