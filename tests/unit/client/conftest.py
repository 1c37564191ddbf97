from __future__ import annotations

from collections.abc import Iterator

import pytest

from podium.client import PodiumClient
from tests.unit.client.fake_api import FakePodium, fake_podium


@pytest.fixture(scope="session")
def _served_api() -> Iterator[FakePodium]:
    with fake_podium() as state:
        yield state


@pytest.fixture
def api(_served_api: FakePodium) -> FakePodium:
    """The fake REST API, emptied for each test."""
    _served_api.reset()
    return _served_api


@pytest.fixture
def client(api: FakePodium) -> Iterator[PodiumClient]:
    with PodiumClient(api.url, timeout=10) as c:
        yield c
