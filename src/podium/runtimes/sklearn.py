"""scikit-learn runtime: `*.skops` models by default; pickles only when trusted.

skops files are loaded with the types they contain trusted only when every one of them
comes from scikit-learn, numpy or scipy; anything else (a user function, a third-party
class) is refused with its name. `*.joblib` / `*.pkl` files run code when loaded, so they
need `trust_pickle: true` on the endpoint.

Requests (Hugging Face style): `inputs` is one row (a list of numbers), a list of rows, or
(for estimators fitted with feature names) a dict of feature name -> value or a list of
such dicts. The answer is a list of predictions, or with
`parameters.return_probabilities: true` a list of {label: probability}.

Tensors (Open Inference Protocol v2): one input `input-0`, FP64 (FP32 accepted), shape
[-1, n_features]; outputs `predict` and, for classifiers, `predict_proba`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from podium.core.errors import Invalid, LoadError
from podium.core.tensors import Array, ModelMetadata, TensorSpec, datatype_of
from podium.runtimes.base import Capabilities, Runtime, RuntimeConfig

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")
INPUT = "input-0"


class SklearnRuntime(Runtime):
    name = "sklearn"
    capabilities = Capabilities(tensor=True, batch=True)

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.estimator: Any = None
        self.n_features: int | None = None
        self.feature_names: list[str] | None = None

    # ------------------------------------------------------------------ loading

    def load(self, path: Path) -> None:
        file = find_model_file(path)
        if file.suffix in SKOPS_SUFFIXES:
            estimator = _load_skops(file)
        elif not self.config.trust_pickle:
            raise LoadError(
                f"{file.name} is a pickle, which runs code when loaded; refusing to load it. "
                "Set trust_pickle: true on the endpoint to allow it, or save the model with skops"
            )
        else:
            estimator = _load_pickle(file)
        if not callable(getattr(estimator, "predict", None)):
            raise LoadError(f"{file.name} holds a {type(estimator).__name__}, which has no predict")
        self.estimator = estimator
        n = getattr(estimator, "n_features_in_", None)
        self.n_features = int(n) if n is not None else None
        names = getattr(estimator, "feature_names_in_", None)
        self.feature_names = [str(x) for x in names] if names is not None else None
        if self.feature_names is not None:
            # Rows arrive as plain arrays, in feature order; the warning would only be noise.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")

    # ------------------------------------------------------------------ HF style

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        return self.predict_batch([inputs], parameters)[0]

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        proba = _flag(parameters, "return_probabilities")
        blocks = [self._rows(item) for item in inputs]
        x = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        values = self._proba_dicts(x) if proba else self._call("predict", x).tolist()
        out, start = [], 0
        for block in blocks:
            out.append(values[start : start + len(block)])
            start += len(block)
        return out

    def _proba_dicts(self, x: Array) -> list[dict[str, float]]:
        if not callable(getattr(self.estimator, "predict_proba", None)):
            raise Invalid(
                f"{type(self.estimator).__name__} has no predict_proba",
                field="parameters.return_probabilities",
            )
        labels = [str(c) for c in self.estimator.classes_.tolist()]
        probs = self._call("predict_proba", x).tolist()
        return [dict(zip(labels, row, strict=True)) for row in probs]

    def _rows(self, inputs: Any) -> Array:
        """One request's `inputs` as a 2-D array (rows x features)."""
        if isinstance(inputs, dict):
            rows: list[Any] = [self._row_from_dict(inputs)]
        elif isinstance(inputs, list) and inputs and all(isinstance(r, list) for r in inputs):
            rows = inputs
        elif isinstance(inputs, list) and inputs and all(isinstance(r, dict) for r in inputs):
            rows = [self._row_from_dict(r) for r in inputs]
        elif (
            isinstance(inputs, list)
            and inputs
            and not any(isinstance(v, list | dict) for v in inputs)
        ):
            rows = [inputs]
        else:
            raise Invalid(
                "inputs must be one row (a list of values), a list of rows"
                + (", or a dict of feature name -> value" if self.feature_names else ""),
                field="inputs",
            )
        try:
            x = np.asarray(rows)
        except ValueError:
            raise Invalid("every row of inputs must have the same length", field="inputs") from None
        if x.ndim != 2:
            raise Invalid("every row of inputs must be a flat list of values", field="inputs")
        if x.dtype.kind not in "biufUO":
            raise Invalid(f"inputs of type {x.dtype} are not supported", field="inputs")
        self._check_width(x.shape[1], "inputs")
        return x

    def _row_from_dict(self, row: dict[str, Any]) -> list[Any]:
        if self.feature_names is None:
            raise Invalid(
                "this model was trained without feature names; send rows as lists",
                field="inputs",
            )
        missing = [n for n in self.feature_names if n not in row]
        if missing:
            raise Invalid(f"missing features: {', '.join(missing)}", field="inputs")
        unknown = sorted(set(row) - set(self.feature_names))
        if unknown:
            raise Invalid(f"unknown features: {', '.join(unknown)}", field="inputs")
        return [row[n] for n in self.feature_names]

    def _check_width(self, width: int, field: str) -> None:
        if self.n_features is not None and width != self.n_features:
            raise Invalid(
                f"each row needs {self.n_features} features, got {width}",
                field=field,
            )

    def _call(self, method: str, x: Array) -> Array:
        try:
            return np.asarray(getattr(self.estimator, method)(x))
        except ValueError as e:
            # scikit-learn reports bad input values (NaN, strings for numbers) as ValueError.
            raise Invalid(str(e), field="inputs") from None

    # ------------------------------------------------------------------ tensors

    def v2_metadata(self) -> ModelMetadata:
        width = self.n_features if self.n_features is not None else -1
        classes = getattr(self.estimator, "classes_", None)
        predict_type = datatype_of(np.asarray(classes).dtype) if classes is not None else "FP64"
        outputs = [TensorSpec("predict", predict_type, (-1,))]
        if classes is not None and self._has_proba():
            outputs.append(TensorSpec("predict_proba", "FP64", (-1, len(classes))))
        return ModelMetadata(
            name=self.config.model_name,
            platform="sklearn",
            inputs=(TensorSpec(INPUT, "FP64", (-1, width), accepts=frozenset({"FP32"})),),
            outputs=tuple(outputs),
        )

    def infer(
        self,
        inputs: dict[str, Array],
        parameters: dict[str, Any],
        outputs: frozenset[str] | None = None,
    ) -> dict[str, Array]:
        x = inputs[INPUT]
        self._check_width(x.shape[1], INPUT)
        result: dict[str, Array] = {}
        if outputs is None or "predict" in outputs:
            result["predict"] = self._call("predict", x)
        if self._has_proba() and (outputs is None or "predict_proba" in outputs):
            result["predict_proba"] = self._call("predict_proba", x)
        return result

    def _has_proba(self) -> bool:
        return getattr(self.estimator, "classes_", None) is not None and callable(
            getattr(self.estimator, "predict_proba", None)
        )

    def health(self) -> bool:
        return self.estimator is not None


# ---------------------------------------------------------------------- files


def find_model_file(path: Path) -> Path:
    """The model file in `path` (a file, or a folder holding one): skops first."""
    if path.is_file():
        if path.suffix in SKOPS_SUFFIXES + PICKLE_SUFFIXES:
            return path
        raise LoadError(f"{path.name} is not a scikit-learn model file (.skops, .joblib, .pkl)")
    if not path.is_dir():
        raise LoadError(f"model path {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file())
    for suffixes in (SKOPS_SUFFIXES, PICKLE_SUFFIXES):
        found = [p for p in files if p.suffix in suffixes]
        if len(found) == 1:
            return found[0]
        if found:
            named = [p for p in found if p.stem == "model"]
            if len(named) == 1:
                return named[0]
            names = ", ".join(p.name for p in found)
            raise LoadError(f"several model files ({names}); keep one, or name it model.skops")
    listing = ", ".join(p.name for p in files[:20]) or "nothing"
    raise LoadError(
        f"no scikit-learn model file (.skops, .joblib, .pkl) in the model; found: {listing}"
    )


def _load_skops(file: Path) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=file)
    except Exception as e:
        raise LoadError(f"{file.name} is not a readable skops file: {e}") from e
    refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULES)]
    if refused:
        raise LoadError(
            f"{file.name} contains types that are not from scikit-learn, numpy or scipy: "
            f"{', '.join(refused)}; refusing to load it"
        )
    try:
        return sio.load(file, trusted=untrusted)
    except Exception as e:
        raise LoadError(f"{file.name} could not be loaded: {type(e).__name__}: {e}") from e


def _load_pickle(file: Path) -> Any:
    import joblib

    try:
        return joblib.load(file)
    except Exception as e:
        raise LoadError(f"{file.name} could not be loaded: {type(e).__name__}: {e}") from e


def _flag(parameters: dict[str, Any], name: str) -> bool:
    value = parameters.get(name, False)
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false", field=f"parameters.{name}")
    return value
