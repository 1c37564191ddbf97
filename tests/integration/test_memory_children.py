"""A replica's memory is the memory of its whole process tree: a `command` server that
stays small itself but forks workers that hold memory is stopped as `oom` once the
workers together pass the instance type's memory, and the workers go with it.

The kernel limit (`RLIMIT_DATA`) is per process and each worker stays under it; only the
backend's poll, which adds the children's resident memory to the parent's, sees this."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from podium.core.phases import EventKind
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

LIMIT_MB = 160
# 200 MiB in the workers alone, each one under the limit: only their sum passes it.
WORKERS, WORKER_MB = 2, 100
SERVER = str(Path(__file__).resolve().parents[1] / "support" / "forking_server.py")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    small = {"name": "small", "cpus": 1, "memory_mb": LIMIT_MB, "price_per_hour": 0.01}
    with running_server(
        tmp_path_factory.mktemp("podium"),
        PODIUM_INSTANCE_TYPES=json.dumps([small]),
        PODIUM_RESTART_BACKOFF_S="0.2",
    ) as s:
        yield s


def oom_events(server: ServerProcess, name: str) -> list[str]:
    with server.client() as c:
        return [e.message for e in c.events(name) if e.kind is EventKind.REPLICA_OOM]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_memory_of_a_command_servers_workers_counts(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "README").write_text("no weights: the server is the model")
    with server.client() as c:
        c.push_model(tmp_path / "model", "forking")
        c.deploy(
            {
                "name": "forking",
                "model": "forking",
                "framework": "command",
                "command": {"command": sys.executable, "args": [SERVER], "health_route": "/health"},
                "instance_type": "small",
            }
        )
        (replica,) = wait_running(c, "forking", timeout=60).replicas
    assert replica.pid is not None and oom_events(server, "forking") == []

    answer = httpx.post(
        f"{server.url}/endpoints/forking/workers",
        params={"n": WORKERS, "mb": WORKER_MB},
        headers=server.headers,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    workers, own_mib = answer.json()["pids"], answer.json()["rss_mib"]
    assert len(workers) == WORKERS
    assert own_mib + WORKER_MB < LIMIT_MB  # the server alone, or with one worker, is under

    wait_until(lambda: bool(oom_events(server, "forking")), timeout=60, what="an oom event")
    (message,) = oom_events(server, "forking")
    used = re.search(r"used (\d+) MiB, limit (\d+) MiB", message)
    assert used, message
    assert int(used.group(2)) == LIMIT_MB
    # No process is over the limit alone (the server, nor a worker of WORKER_MB MiB): the
    # figure that is over it is their sum.
    assert int(used.group(1)) > LIMIT_MB
    wait_until(lambda: all(gone(pid) for pid in workers), timeout=30, what="the workers to die")
    assert gone(replica.pid)
    with server.client() as c:
        c.delete("forking")
