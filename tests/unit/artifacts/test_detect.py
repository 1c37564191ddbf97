from __future__ import annotations

from pathlib import Path

import pytest

from podium.artifacts.detect import detect_framework


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"model.skops": b""}, "sklearn"),
        ({"pipeline.skops": b""}, "sklearn"),
        ({"model.joblib": b""}, "sklearn"),
        ({"clf.pkl": b""}, "sklearn"),
        ({"model.py": b"", "requirements.txt": b""}, "python"),
        ({"model.py": b"", "model.joblib": b""}, "python"),  # the user wrote the loader
        ({"model.onnx": b""}, "onnx"),
        ({"config.json": b'{"model_type": "bert"}', "model.safetensors": b""}, "transformers"),
        ({"config.json": b'{"hidden_size": 4}'}, None),
        ({"config.json": b"not json"}, None),
        ({"config.json": b"[1, 2]"}, None),
        ({"README.md": b""}, None),
        ({}, None),
    ],
)
def test_detect_framework(tmp_path: Path, files: dict[str, bytes], expected: str | None) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert detect_framework(tmp_path) == expected


def test_single_file(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    assert detect_framework(tmp_path / "model.onnx") == "onnx"


def test_only_top_level_files_count(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.onnx").write_bytes(b"")
    assert detect_framework(tmp_path) is None


def test_missing_path(tmp_path: Path) -> None:
    assert detect_framework(tmp_path / "nope") is None
