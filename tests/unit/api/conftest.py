"""A real API over a migrated SQLite store and an artifact store, both in tmp_path."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.artifacts.store import ArtifactStore
from podium.backends import logfiles
from podium.backends.local_logs import LocalLogs
from podium.core.phases import ReplicaState
from podium.core.settings import Settings
from podium.store import Database
from podium.store.records import ReplicaRecord
from tests.support.db import sqlite_url

__all__ = ["sqlite_url"]


class WakeRecorder:
    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def __call__(self, endpoint: str | None = None) -> None:
        self.calls.append(endpoint)


@pytest.fixture
def wake() -> WakeRecorder:
    return WakeRecorder()


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def ctx(tmp_path: Path, db: Database, wake: WakeRecorder) -> ApiContext:
    settings = Settings(home=tmp_path / "home", port=8123, auth=False)
    return ApiContext(
        settings=settings,
        db=db,
        artifacts=ArtifactStore(settings.artifacts_dir),
        # the local backend's own log reader, over the files a replica would write
        logs=LocalLogs(settings.logs_dir, settings.log_retention),
        wake=wake,
        log_poll_s=0.05,
    )


@pytest.fixture
def app(ctx: ApiContext) -> FastAPI:
    return create_api(ctx)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The app on a real uvicorn, in a thread, on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


# ---------------------------------------------------------------- helpers


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def push(
    client: TestClient,
    name: str,
    data: bytes,
    filename: str = "model.bin",
    framework: str | None = "sklearn",
) -> Any:
    params = {"filename": filename}
    if framework is not None:
        params["framework"] = framework
    return client.post(
        f"/api/v1/models/{name}/versions",
        params=params,
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


def spec(name: str = "iris-ep", model: str = "iris", **extra: Any) -> dict[str, Any]:
    return {"name": name, "model": model, "framework": "sklearn", **extra}


def write_log(ctx: ApiContext, endpoint: str, replica_id: str, text: str) -> Path:
    """The replica's log file where the local backend keeps it, with `text` in it."""
    path = logfiles.path_for(ctx.settings.logs_dir, endpoint, replica_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def add_replica(
    db: Database,
    endpoint: str,
    replica_id: str,
    *,
    state: ReplicaState = ReplicaState.READY,
    log_path: Path | None = None,
) -> None:
    with db.unit_of_work() as uow:
        uow.replicas.upsert(
            ReplicaRecord(
                replica_id=replica_id,
                endpoint=endpoint,
                revision=1,
                state=state,
                host="127.0.0.1",
                port=9000,
                pid=None,
                started_at=datetime.now(UTC),
                log_path=str(log_path or ""),
            )
        )
