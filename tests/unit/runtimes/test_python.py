from __future__ import annotations

from pathlib import Path

import pytest

from podium.core.errors import LoadError
from podium.runtimes.base import RuntimeConfig
from podium.runtimes.python import PythonRuntime
from podium.runtimes.requirements import parse_requirements, unmet
from tests.support.models import write_python_bundle


def loaded(path: Path) -> PythonRuntime:
    runtime = PythonRuntime(RuntimeConfig(model_name="echo"))
    runtime.load(path)
    return runtime


def test_bundle_loads_and_predicts(tmp_path: Path) -> None:
    runtime = loaded(write_python_bundle(tmp_path, version=3))
    assert runtime.health()
    assert runtime.predict({"a": [1, 2]}, {}) == {"version": 3, "echo": {"a": [1, 2]}}
    assert runtime.predict_batch(["x", "y"], {}) == [
        {"version": 3, "echo": "x"},
        {"version": 3, "echo": "y"},
    ]
    assert not runtime.capabilities.batch
    assert not runtime.capabilities.tensor


def test_load_error_carries_the_exception(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"Model\.load\(\) raised RuntimeError: weights missing"):
        loaded(write_python_bundle(tmp_path, fail_load="weights missing"))


def test_single_class_without_the_name_model_is_found(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(
        "class Helper:\n    pass\n\n"
        "class Echo:\n"
        "    def load(self, path):\n        self.n = 7\n"
        "    def predict(self, inputs, parameters):\n        return self.n\n"
        "    def predict_batch(self, inputs, parameters):\n        return [self.n] * len(inputs)\n"
    )
    runtime = loaded(tmp_path)
    assert runtime.predict(None, {}) == 7
    assert runtime.capabilities.batch
    assert runtime.predict_batch([1, 2], {}) == [7, 7]


def test_bundle_without_model_py(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(LoadError, match=r"no model\.py in the model bundle; found: weights\.bin"):
        loaded(tmp_path)


def test_import_error_in_model_py(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("import not_a_real_module_xyz\n")
    with pytest.raises(LoadError, match=r"importing model\.py raised ModuleNotFoundError"):
        loaded(tmp_path)


def test_unmet_requirements_are_named_before_importing(tmp_path: Path) -> None:
    import numpy

    bundle = write_python_bundle(
        tmp_path,
        requirements=[
            "# comment",
            "numpy>=1",  # met
            "not-a-real-package-xyz>=2",
            f"numpy=={numpy.__version__}.post99",
            "another-missing-pkg ; python_version < '3'",  # marker does not apply
        ],
    )
    (bundle / "model.py").write_text("raise SystemExit('model.py must not be imported')\n")
    with pytest.raises(LoadError) as caught:
        loaded(bundle)
    assert str(caught.value) == (
        "missing packages: not-a-real-package-xyz>=2 (not installed), "
        f"numpy=={numpy.__version__}.post99 ({numpy.__version__} installed); "
        "install them on the backend"
    )


def test_met_requirements_load(tmp_path: Path) -> None:
    runtime = loaded(write_python_bundle(tmp_path, requirements=["numpy", "scikit-learn>=1.0"]))
    assert runtime.predict(1, {})["echo"] == 1


def test_requirements_parsing() -> None:
    reqs = parse_requirements("-r base.txt\n\nfoo[bar]>=1,<3  # why\n--index-url x\n")
    assert [str(r) for r in reqs] == ["foo[bar]<3,>=1"]
    assert unmet(reqs) == ["foo[bar]<3,>=1 (not installed)"]
    with pytest.raises(LoadError, match="line 1: invalid requirement"):
        parse_requirements("foo >>> 1")
