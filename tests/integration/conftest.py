from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real `podium up` (SQLite, local replica processes) shared by a test module."""
    with running_server(tmp_path_factory.mktemp("podium")) as s:
        yield s


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path
