"""An untrusted pickle is refused before anything unpickles it: a payload never runs.

Each fixture writes a marker file when it is unpickled (tests/support/malicious.py); the
harmless iris pickle of test_sklearn.py cannot tell a refusal from a load that ran the
file first and refused afterwards. These can."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.artifacts.detect import detect_framework
from podium.core.errors import LoadError
from podium.runtimes.base import RuntimeConfig
from podium.runtimes.sklearn import SklearnRuntime
from tests.support import malicious

FILENAMES = ("model.joblib", "model.pkl", "model.pickle")


def sklearn(path: Path, *, trust_pickle: bool) -> SklearnRuntime:
    runtime = SklearnRuntime(RuntimeConfig(model_name="evil", trust_pickle=trust_pickle))
    runtime.load(path)
    return runtime


@pytest.mark.parametrize("filename", FILENAMES)
def test_the_fixture_is_live(tmp_path: Path, filename: str) -> None:
    marker = tmp_path / "marker"
    folder = malicious.sklearn_pickle(tmp_path / "model", marker, filename)
    assert not marker.exists()
    assert malicious.fires(folder / filename, marker)


@pytest.mark.parametrize("filename", FILENAMES)
def test_untrusted_pickle_is_refused_and_never_runs(tmp_path: Path, filename: str) -> None:
    marker = tmp_path / "marker"
    folder = malicious.sklearn_pickle(tmp_path / "model", marker, filename)
    for path in (folder, folder / filename):  # a folder holding it, or the file itself
        with pytest.raises(LoadError, match=r"is a pickle, .*trust_pickle: true"):
            sklearn(path, trust_pickle=False)
        assert not marker.exists(), "the untrusted pickle ran"


@pytest.mark.parametrize("filename", FILENAMES)
def test_trusted_pickle_runs_its_code_and_serves(tmp_path: Path, filename: str) -> None:
    marker = tmp_path / "marker"
    folder = malicious.sklearn_pickle(tmp_path / "model", marker, filename)
    runtime = sklearn(folder, trust_pickle=True)
    assert marker.read_text() == malicious.PAYLOAD  # what trust_pickle means
    assert runtime.predict([6.3, 3.3, 6.0, 2.5], {}) == [2]


def test_detecting_the_framework_never_unpickles(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = malicious.sklearn_pickle(tmp_path / "model", marker)
    assert detect_framework(folder) == "sklearn"
    assert detect_framework(folder / "model.joblib") == "sklearn"
    assert not marker.exists()
