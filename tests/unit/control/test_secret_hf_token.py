"""An endpoint's `model_source.token_secret` is the token its `hf://` download sends: a
real download child against a loopback Hub, which records what it was sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from podium.artifacts.sources import NodeCache
from podium.backends.base import ModelSource
from podium.backends.model_cache import ModelCache
from podium.control.loop import Controller
from podium.core.phases import EndpointStatus
from podium.core.routing import InProcessRoutingSource
from podium.core.settings import DownloadSettings, Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.secret_box import SecretBox
from tests.support.db import sqlite_url
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.support.silent_hub import fake_hub
from tests.unit.control.hub_recorder import recording_proxy

__all__ = ["sqlite_url"]

WAIT_S = 90
TOKEN = "hf_EndpointOwnToken0123456789abcdef"
SERVER_TOKEN = "hf_TheServersOwnToken987654321"
BODY = b"weights" * 1000


def backend_for(tmp_path: Path, hub: str) -> FakeBackend:
    """A fake backend whose models are prepared by the local backend's real model cache,
    with the server's own HF_TOKEN set (the endpoint's secret must win over it)."""
    env = {"HF_ENDPOINT": hub, "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": SERVER_TOKEN}
    return FakeBackend(ModelCache(NodeCache(tmp_path / "cache", env=env), DownloadSettings()))


def run_passes(
    settings: Settings, db: Database, backend: FakeBackend, until: Callable[[], bool]
) -> None:
    """Controller passes on real time (the download child is real) until `until()`."""

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(FakeReplicas())) as http:
            ctl = Controller(settings, db, backend, InProcessRoutingSource(), http=http)
            deadline = time.monotonic() + WAIT_S
            try:
                while not until():
                    assert time.monotonic() < deadline
                    await ctl.run_once()
                    await asyncio.sleep(0.1)
            finally:
                await ctl.preparing.release_all()

    asyncio.run(main())


def test_the_download_sends_the_endpoints_own_token(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(home=tmp_path / "home")
    db = Database(sqlite_url)
    db.migrate()
    box = SecretBox(settings.secret_key_path)
    spec = EndpointSpec.model_validate(
        {
            "name": "echo",
            "model": "hf://acme/echo",
            "framework": "python",
            "model_source": {"token_secret": "hf-token"},
        }
    )
    with db.unit_of_work() as uow:
        uow.secrets.put("default", "hf-token", box.encrypt(TOKEN, may_create=True), by="t")
        uow.endpoints.create(
            spec, model_ref="hf://acme/echo", status=EndpointStatus.PENDING, desired_replicas=1
        )
    seen: list[tuple[str, str]] = []
    with fake_hub("acme/echo", {"model.bin": BODY}) as hub, recording_proxy(hub, seen) as proxy:
        backend = backend_for(tmp_path, proxy)
        run_passes(settings, db, backend, lambda: bool(backend.started))
    db.dispose()
    # Every request for the repo (its info, its files) carries the endpoint's token; none
    # the server's own (huggingface_hub's requests of its own, if any, carry none).
    repo = [auth for path, auth in seen if "acme/echo" in path]
    assert repo and set(repo) == {f"Bearer {TOKEN}"}
    assert not any(SERVER_TOKEN in auth for _, auth in seen)
    (launch,) = backend.started
    assert launch.model.token == TOKEN
    assert TOKEN not in repr(launch.model)  # a ModelSource never shows its token


def test_one_model_with_two_tokens_is_two_downloads(tmp_path: Path) -> None:
    """Keyed on (model, token): a token that may not read the model fails on its own."""
    with fake_hub("acme/echo", {"model.bin": BODY}, stall_after=100) as hub:
        cache = backend_for(tmp_path, hub).models
        assert cache is not None
        mine = ModelSource(ref="hf://acme/echo", token="hf_one-token-aaaa")
        theirs = ModelSource(ref="hf://acme/echo", token="hf_two-token-bbbb")
        try:
            cache.prepare(mine)
            cache.prepare(theirs)
            one, two = cache.fetching(mine), cache.fetching(theirs)
            assert one is not None and two is not None and one is not two
            assert cache.fetching(ModelSource(ref="hf://acme/echo")) is None
        finally:
            cache.cancel_all()
