"""Python runtime: a model bundle folder whose `model.py` defines the model class.

    bundle/
      model.py           class Model: load(self, path) / predict(self, inputs, parameters)
      requirements.txt   optional: checked against installed packages before importing
      …                  anything else the class reads in load()

The class is `Model`, or else the one class defined in model.py with both `load` and
`predict`. Optional methods: `predict_batch(self, inputs: list, parameters) -> list` and
`health(self) -> bool`.

This runtime runs the user's code in the replica process by design: importing model.py
executes it. Requirements are only checked, never installed. The bundle folder is put on
`sys.path` so model.py can import its sibling modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from podium.core.errors import LoadError, PodiumError
from podium.runtimes.base import Capabilities, Runtime, RuntimeConfig
from podium.runtimes.requirements import check_requirements

MODEL_FILE = "model.py"


class PythonRuntime(Runtime):
    name = "python"

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.model: Any = None

    def load(self, path: Path) -> None:
        bundle = path if path.is_dir() else path.parent
        source = bundle / MODEL_FILE
        if not source.is_file():
            found = (
                ", ".join(sorted(p.name for p in bundle.iterdir())[:20]) if bundle.is_dir() else ""
            )
            raise LoadError(f"no {MODEL_FILE} in the model bundle; found: {found or 'nothing'}")
        check_requirements(bundle / "requirements.txt")
        module = _import_file(source)
        cls = _model_class(module)
        try:
            model = cls()
        except Exception as e:
            raise LoadError(f"{cls.__name__}() raised {type(e).__name__}: {e}") from e
        try:
            model.load(bundle)
        except PodiumError:
            raise
        except Exception as e:
            raise LoadError(f"{cls.__name__}.load() raised {type(e).__name__}: {e}") from e
        self.model = model
        self.capabilities = Capabilities(batch=callable(getattr(model, "predict_batch", None)))

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        return self.model.predict(inputs, parameters)

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        if self.capabilities.batch:
            return list(self.model.predict_batch(inputs, parameters))
        return super().predict_batch(inputs, parameters)

    def health(self) -> bool:
        if self.model is None:
            return False
        check = getattr(self.model, "health", None)
        if not callable(check):
            return True
        try:
            return bool(check())
        except Exception:
            return False

    def close(self) -> None:
        close = getattr(self.model, "close", None)
        if callable(close):
            close()


def _import_file(source: Path) -> ModuleType:
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    name = f"podium_bundle_{digest}"
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise LoadError(f"{source.name} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    folder = str(source.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise LoadError(f"importing {source.name} raised {type(e).__name__}: {e}") from e
    return module


def _model_class(module: ModuleType) -> type:
    named = getattr(module, "Model", None)
    if inspect.isclass(named):
        _check_methods(named)
        return named
    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and obj.__module__ == module.__name__
        and callable(getattr(obj, "load", None))
        and callable(getattr(obj, "predict", None))
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LoadError(
            f"{MODEL_FILE} defines no model class: name it Model, with load(self, path) and "
            "predict(self, inputs, parameters)"
        )
    names = ", ".join(sorted(c.__name__ for c in candidates))
    raise LoadError(f"{MODEL_FILE} defines several model classes ({names}); name one Model")


def _check_methods(cls: type) -> None:
    missing = [m for m in ("load", "predict") if not callable(getattr(cls, m, None))]
    if missing:
        raise LoadError(f"class Model in {MODEL_FILE} has no {' or '.join(missing)} method")
