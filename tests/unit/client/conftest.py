"""The SDK against the real server app (`tests.support.inproc`): real routes, validation
and problem+json errors over loopback HTTP; the test plays the controller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.client import PodiumClient
from tests.support.inproc import InProcessPodium, Served, serving


@pytest.fixture(scope="session")
def _served() -> Iterator[Served]:
    with serving() as served:
        yield served


@pytest.fixture
def podium(
    _served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InProcessPodium]:
    """A fresh Podium (empty store, new home) for each test; every client made in the test
    carries its admin token ($PODIUM_TOKEN)."""
    fresh = _served.fresh(tmp_path / "home")
    monkeypatch.setenv("PODIUM_TOKEN", fresh.token)
    yield fresh
    _served.close_current()


@pytest.fixture
def client(podium: InProcessPodium) -> Iterator[PodiumClient]:
    with PodiumClient(podium.url, token=podium.token, timeout=10) as c:
        yield c
