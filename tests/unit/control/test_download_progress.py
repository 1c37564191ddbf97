"""A model download's progress shows in the endpoint's status reason (of the total, when the
Hub tells it), in `download_progress` events, and its size in the `download_done` event
(issue 10). A real download child against a loopback Hub that sends
part of a file and then holds the rest (tests/support/silent_hub.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from podium.artifacts.sources import NodeCache
from podium.backends.model_cache import ModelCache
from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind
from podium.core.routing import InProcessRoutingSource
from podium.core.settings import DownloadSettings, Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from tests.support.db import sqlite_url
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.support.silent_hub import fake_hub

__all__ = ["sqlite_url"]

WAIT_S = 90
BODY = bytes(range(256)) * 2048  # 512 KiB
SENT = 300_000  # what the Hub sends of it before it holds the rest


def _status(db: Database) -> tuple[EndpointStatus, str | None]:
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get("echo")
        return ep.status, ep.status_reason


def _endpoint(sqlite_url: str) -> Database:
    db = Database(sqlite_url)
    db.migrate()
    spec = EndpointSpec.model_validate(
        {"name": "echo", "model": "hf://acme/echo", "framework": "python"}
    )
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec, model_ref="hf://acme/echo", status=EndpointStatus.PENDING, desired_replicas=1
        )
    return db


def _backend(tmp_path: Path, hub: str) -> FakeBackend:
    """A fake backend whose models are prepared by the local backend's real model cache."""
    cache = NodeCache(tmp_path / "cache", env={"HF_ENDPOINT": hub, "HF_HOME": str(tmp_path / "hf")})
    return FakeBackend(ModelCache(cache, DownloadSettings()))


def _passes(
    tmp_path: Path, db: Database, backend: FakeBackend, hub: str, until: Callable[[], bool]
) -> None:
    """Controller passes (real time: the download child is real) until `until()`."""

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(FakeReplicas())) as http:
            ctl = Controller(
                Settings(home=tmp_path / "home"),
                db,
                backend,
                InProcessRoutingSource(),
                http=http,
            )
            deadline = time.monotonic() + WAIT_S
            try:
                while not until():
                    assert time.monotonic() < deadline, _status(db)
                    await ctl.run_once()
                    await asyncio.sleep(0.1)
            finally:
                await ctl.preparing.release_all()

    asyncio.run(main())


def test_the_bytes_fetched_so_far_are_the_status_reason(tmp_path: Path, sqlite_url: str) -> None:
    """A Hub that does not give the files' sizes: bytes only."""
    db = _endpoint(sqlite_url)

    def fetched() -> bool:
        reason = _status(db)[1]
        return reason is not None and "so far" in reason and " 0.0 KiB" not in reason

    with fake_hub("acme/echo", {"model.bin": BODY}, stall_after=SENT, file_sizes=False) as hub:
        backend = _backend(tmp_path, hub)
        _passes(tmp_path, db, backend, hub, fetched)
    status, reason = _status(db)
    db.dispose()
    assert status is EndpointStatus.INITIALIZING
    assert reason is not None and reason.startswith("downloading hf://acme/echo: ")
    assert backend.started == []  # resolving: nothing to start yet


def test_the_status_reason_shows_the_share_of_the_total(tmp_path: Path, sqlite_url: str) -> None:
    db = _endpoint(sqlite_url)

    def of_total() -> bool:
        reason = _status(db)[1]
        return reason is not None and " of 512.0 KiB (" in reason

    with fake_hub("acme/echo", {"model.bin": BODY}, stall_after=SENT) as hub:
        backend = _backend(tmp_path, hub)
        _passes(tmp_path, db, backend, hub, of_total)
    status, reason = _status(db)
    db.dispose()
    assert status is EndpointStatus.INITIALIZING
    assert reason is not None
    assert re.fullmatch(r"downloading hf://acme/echo: \d+\.\d KiB of 512\.0 KiB \(\d+%\)", reason)


def test_the_done_event_says_how_much_was_fetched(tmp_path: Path, sqlite_url: str) -> None:
    db = _endpoint(sqlite_url)
    with fake_hub("acme/echo", {"model.bin": BODY}) as hub:
        backend = _backend(tmp_path, hub)
        _passes(tmp_path, db, backend, hub, lambda: bool(backend.started))
    with db.unit_of_work(read_only=True) as uow:
        done = [e for e in uow.events.list("echo") if e.kind is EventKind.DOWNLOAD_DONE]
    db.dispose()
    assert [launch.endpoint for launch in backend.started] == ["echo"]
    assert len(done) == 1
    assert int(str(done[0].data["bytes"])) >= len(BODY)
