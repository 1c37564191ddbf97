from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.models import train_iris_pickle, train_iris_skops


@pytest.fixture(scope="session")
def iris_skops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_iris_skops(tmp_path_factory.mktemp("iris-skops"))


@pytest.fixture(scope="session")
def iris_pickle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_iris_pickle(tmp_path_factory.mktemp("iris-pickle"))
