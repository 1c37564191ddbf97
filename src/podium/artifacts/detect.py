"""Guess which runtime serves a model from the names of its top-level files.

Only a guess, shown to the user and used when an endpoint names no framework; reading a
model's files never runs them. First match wins:

    model.py                                 -> "python"   (the user wrote the loader)
    *.skops, *.joblib, *.pkl, *.pickle       -> "sklearn"
    *.onnx                                   -> "onnx"
    config.json with a "model_type" string   -> "transformers"
"""

from __future__ import annotations

import json
from pathlib import Path

_SKLEARN_SUFFIXES = (".skops", ".joblib", ".pkl", ".pickle")
_MAX_CONFIG_BYTES = 1024 * 1024


def detect_framework(path: Path) -> str | None:
    """The runtime that most likely serves the model at `path` (file or folder), or None."""
    if path.is_file():
        names = {path.name: path}
    elif path.is_dir():
        names = {p.name: p for p in path.iterdir() if p.is_file() and not p.is_symlink()}
    else:
        return None
    lower = {name.lower() for name in names}
    if "model.py" in names:
        return "python"
    if any(name.endswith(_SKLEARN_SUFFIXES) for name in lower):
        return "sklearn"
    if any(name.endswith(".onnx") for name in lower):
        return "onnx"
    config = names.get("config.json")
    if config is not None and _has_model_type(config):
        return "transformers"
    return None


def _has_model_type(config: Path) -> bool:
    try:
        if config.stat().st_size > _MAX_CONFIG_BYTES:
            return False
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("model_type"), str)
