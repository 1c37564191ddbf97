from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from podium.cli.main import app
from podium.client import PodiumClient
from tests.unit.client.fake_api import FakePodium, fake_podium
from tests.unit.client.test_packing import make_model


@dataclass
class Cli:
    """Runs `podium ARGS…` in-process against the fake API (PODIUM_URL points at it)."""

    api: FakePodium
    runner: CliRunner

    def __call__(self, *args: str, input: str | None = None) -> Result:
        env = {"PODIUM_URL": self.api.url, "COLUMNS": "200"}
        return self.runner.invoke(app, list(args), env=env, input=input)


@pytest.fixture(scope="session")
def _served_api() -> Iterator[FakePodium]:
    with fake_podium() as state:
        yield state


@pytest.fixture
def api(_served_api: FakePodium) -> FakePodium:
    _served_api.reset()
    return _served_api


@pytest.fixture
def cli(api: FakePodium) -> Cli:
    return Cli(api, CliRunner())


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path)


@pytest.fixture
def pushed(api: FakePodium, model_dir: Path) -> str:
    """A model `iris:1` in the repository."""
    with PodiumClient(api.url) as client:
        return client.push_model(model_dir, "iris", framework="sklearn").ref


@pytest.fixture
def deployed(api: FakePodium, pushed: str) -> str:
    """A running endpoint `iris`."""
    with PodiumClient(api.url) as client:
        client.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
        client.wait_for("iris", {"running"}, timeout=5, poll=0.01)
    api.requests.clear()
    return "iris"
