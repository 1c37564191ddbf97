"""Start `python -m podium.replica` as a real subprocess and wait until it serves."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.models import train_iris_skops, write_python_bundle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    replica_id: str
    status_file: Path
    log_file: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.status_file.read_text()))

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()


MODEL_VERSION = "3"  # the version of the model the test replicas serve (revision 1)


def launch(
    tmp: Path,
    *,
    runtime: str,
    model_path: Path,
    endpoint: str,
    use_fd: bool = False,
    extra: list[str] | None = None,
) -> Replica:
    """Start a replica and return once it printed its ready line (or exited)."""
    replica_id = f"{endpoint}-r1-test"
    status_file = tmp / f"{replica_id}.status.json"
    log_file = tmp / f"{replica_id}.log"
    cmd = [
        sys.executable, "-m", "podium.replica",
        "--replica-id", replica_id, "--endpoint", endpoint, "--revision", "1",
        "--model-version", MODEL_VERSION,  # not the revision: protocols report this one
        "--runtime", runtime, "--model-path", str(model_path),
        "--status-file", str(status_file), *(extra or []),
    ]  # fmt: skip
    listener: socket.socket | None = None
    pass_fds: tuple[int, ...] = ()
    if use_fd:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        cmd += ["--fd", str(listener.fileno())]
        pass_fds = (listener.fileno(),)
    else:
        port = free_port()
        cmd += ["--port", str(port)]
    with log_file.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, pass_fds=pass_fds)
    if listener is not None:
        listener.close()
    replica = Replica(proc, replica_id, status_file, log_file, port)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()  # blocks until ready, or EOF when it exits
    if line:
        assert f"replica {replica_id} ready on http://127.0.0.1:{port}" in line
    return replica


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_iris_skops(tmp_path_factory.mktemp("iris"))


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory, iris_model: Path) -> Iterator[Replica]:
    """An iris replica serving on a socket inherited with --fd."""
    replica = launch(
        tmp_path_factory.mktemp("iris-replica"),
        runtime="sklearn",
        model_path=iris_model,
        endpoint="iris",
        use_fd=True,
    )
    assert replica.proc.poll() is None, replica.log()
    yield replica
    assert replica.stop() == 0, replica.log()


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """A python-bundle replica serving on --port."""
    tmp = tmp_path_factory.mktemp("echo-replica")
    bundle = write_python_bundle(tmp / "bundle", version=2)
    replica = launch(tmp, runtime="python", model_path=bundle, endpoint="echo")
    assert replica.proc.poll() is None, replica.log()
    yield replica
    assert replica.stop() == 0, replica.log()
