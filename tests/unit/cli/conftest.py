"""The CLI in-process (typer's runner) against the real server app over loopback HTTP
(`tests.support.inproc`); the test plays the controller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from podium.cli.main import app
from podium.client import PodiumClient
from tests.support.inproc import InProcessPodium, Served, serving
from tests.unit.client.test_packing import make_model


@dataclass
class Cli:
    """Runs `podium ARGS…` in-process against the real API (PODIUM_URL points at it)."""

    api: InProcessPodium
    runner: CliRunner

    def __call__(self, *args: str, input: str | None = None) -> Result:
        env = {"PODIUM_URL": self.api.url, "COLUMNS": "200"}
        return self.runner.invoke(app, list(args), env=env, input=input)


@pytest.fixture(scope="session")
def _served() -> Iterator[Served]:
    with serving() as served:
        yield served


@pytest.fixture
def api(
    _served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InProcessPodium]:
    """A fresh Podium (empty store, new home) for each test; the CLI and every client made
    in the test carry its admin token ($PODIUM_TOKEN)."""
    fresh = _served.fresh(tmp_path / "home")
    monkeypatch.setenv("PODIUM_TOKEN", fresh.token)
    yield fresh
    _served.close_current()


@pytest.fixture
def cli(api: InProcessPodium) -> Cli:
    return Cli(api, CliRunner())


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path)


@pytest.fixture
def pushed(api: InProcessPodium, model_dir: Path) -> str:
    """A model `iris:1` in the repository."""
    with PodiumClient(api.url) as client:
        return client.push_model(model_dir, "iris", framework="sklearn").ref


@pytest.fixture
def deployed(api: InProcessPodium, pushed: str) -> str:
    """A running endpoint `iris` (one ready replica, `iris-r1-000000`)."""
    with PodiumClient(api.url) as client:
        client.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
    api.ready("iris")
    api.requests.clear()
    return "iris"


def spec_of(api: InProcessPodium, name: str) -> dict[str, Any]:
    """The endpoint's spec as the server stored it."""
    with PodiumClient(api.url) as client:
        return client.endpoint(name).spec.model_dump(mode="json")
