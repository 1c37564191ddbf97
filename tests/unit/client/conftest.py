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
def podium(_served: Served, tmp_path: Path) -> Iterator[InProcessPodium]:
    """A fresh Podium (empty store, new home) for each test."""
    yield _served.fresh(tmp_path / "home")
    _served.close_current()


@pytest.fixture
def client(podium: InProcessPodium) -> Iterator[PodiumClient]:
    with PodiumClient(podium.url, timeout=10) as c:
        yield c
