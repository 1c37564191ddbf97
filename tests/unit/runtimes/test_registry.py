from __future__ import annotations

import subprocess
import sys

import pytest

from podium.core.errors import Invalid
from podium.runtimes.base import Runtime
from podium.runtimes.registry import get_runtime, known_runtimes, serves_openai


def test_builtins_are_known() -> None:
    assert {"python", "sklearn"} <= set(known_runtimes())


def test_get_runtime_returns_runtime_classes() -> None:
    for name in ("python", "sklearn"):
        cls = get_runtime(name)
        assert issubclass(cls, Runtime)
        assert cls.name == name


def test_unknown_framework() -> None:
    with pytest.raises(Invalid) as caught:
        get_runtime("tensorflow-lite")
    assert caught.value.field == "framework"
    assert str(caught.value).startswith("unknown framework 'tensorflow-lite'; known: ")
    for known in ("python", "sklearn", "onnx", "command"):
        assert known in str(caught.value)


def test_listing_names_imports_no_runtime_module() -> None:
    code = (
        "import sys\n"
        "from podium.runtimes.registry import known_runtimes\n"
        "known_runtimes()\n"
        "heavy = [m for m in ('numpy', 'sklearn', 'torch', 'skops', 'podium.runtimes.sklearn') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_points_are_declared() -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="podium.runtimes")}
    assert {"python", "sklearn"} <= names


@pytest.mark.parametrize(
    ("framework", "task", "serves"),
    [
        ("transformers", "text-generation", True),
        ("transformers", "feature-extraction", True),
        ("transformers", "text-classification", False),
        ("transformers", None, None),  # the task comes from the model's config
        ("sklearn", None, False),
        ("onnx", None, False),
        ("python", None, None),  # a bundle may define generate/embed
        ("command", None, None),
        ("vllm", None, True),
        ("llama.cpp", None, True),
        ("triton", None, False),
        ("my-plugin", None, None),
    ],
)
def test_serves_openai_from_the_spec(framework: str, task: str | None, serves: bool | None) -> None:
    assert serves_openai(framework, task) is serves
