"""Python runtime: a model bundle folder whose `model.py` defines the model class.

    bundle/
      model.py           class Model: load(self, path) and what it serves (below)
      requirements.txt   optional: checked against installed packages before importing
      …                  anything else the class reads in load()

The class is `Model`, or else the one class defined in model.py with `load` and one of
`predict`, `generate`, `embed`, `infer`. What Podium serves follows the methods it has:

    predict(inputs, parameters)        Hugging Face style `POST /`
    predict_batch(inputs, parameters)  several requests at once (dynamic batching)
    predict_stream(inputs, parameters) yields partial results (`"stream": true`)
    generate(request, cancelled)       yields text: TGI `POST /`, OpenAI completions
    chat_prompt(messages) -> str       renders chat messages: OpenAI chat completions
    embed(texts) -> vectors            OpenAI embeddings (and `POST /` without predict)
    context_length() -> int            longest prompt + completion, in tokens
    count_tokens(text) -> int          token counts for usage (default: words)
    v2_metadata() + infer(inputs, parameters)   Open Inference Protocol v2 tensors
    health() -> bool, close()

`generate` gets a `GenerationRequest` (prompt, max_tokens, temperature, top_p, stop, seed)
and a `threading.Event` set when the client went away. It yields text pieces (each one
counts as a token) or `GenerationChunk`s; with text pieces Podium enforces `max_tokens`
and `stop` and adds the last chunk. `v2_metadata` returns a `ModelMetadata` or a dict
{"inputs": [{"name", "datatype", "shape"}], "outputs": [...]}; `infer` returns a dict of
output name -> array.

This runtime runs the user's code in the replica process by design: importing model.py
executes it. Requirements are only checked, never installed. The bundle folder is put on
`sys.path` so model.py can import its sibling modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from podium.core.errors import Invalid, LoadError, PodiumError
from podium.core.tensors import Array, ModelMetadata, TensorSpec
from podium.runtimes.base import (
    Capabilities,
    Embeddings,
    GenerationChunk,
    GenerationRequest,
    Runtime,
    RuntimeConfig,
)
from podium.runtimes.requirements import check_requirements

MODEL_FILE = "model.py"
SERVING = ("predict", "generate", "embed", "infer")


class PythonRuntime(Runtime):
    name = "python"

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.model: Any = None
        self.metadata: ModelMetadata | None = None

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
        has = {m: callable(getattr(model, m, None)) for m in _OPTIONAL}
        tensor = has["v2_metadata"] and has["infer"]
        if tensor:
            self.metadata = self._tensor_metadata()
        self.capabilities = Capabilities(
            tensor=tensor,
            batch=has["predict_batch"],
            generative=has["generate"],
            streaming=has["predict_stream"],
            embeddings=has["embed"],
            chat=has["chat_prompt"],
        )

    # ------------------------------------------------------------------ Hugging Face style

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        if callable(getattr(self.model, "predict", None)):
            return self.model.predict(inputs, parameters)
        if self.capabilities.embeddings:
            if isinstance(inputs, str):
                return self.embed([inputs]).vectors[0]
            if isinstance(inputs, list) and all(isinstance(t, str) for t in inputs):
                return self.embed(inputs).vectors
            raise Invalid('"inputs" must be a string or a list of strings', field="inputs")
        raise Invalid("this model does not answer predictions", field="inputs")

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        if self.capabilities.batch:
            return list(self.model.predict_batch(inputs, parameters))
        return super().predict_batch(inputs, parameters)

    def predict_stream(self, inputs: Any, parameters: dict[str, Any]) -> Iterator[Any]:
        if not self.capabilities.streaming:
            return super().predict_stream(inputs, parameters)
        return iter(self.model.predict_stream(inputs, parameters))

    # ------------------------------------------------------------------ tensors

    def _tensor_metadata(self) -> ModelMetadata:
        try:
            raw = self.model.v2_metadata()
        except Exception as e:
            raise LoadError(f"v2_metadata() raised {type(e).__name__}: {e}") from e
        if isinstance(raw, ModelMetadata):
            return raw
        try:
            return ModelMetadata(
                name=self.config.model_name,
                inputs=tuple(_spec(s) for s in raw["inputs"]),
                outputs=tuple(_spec(s) for s in raw["outputs"]),
                platform=str(raw.get("platform", "python")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise LoadError(
                'v2_metadata() must return a ModelMetadata or {"inputs": [{"name", "datatype", '
                f'"shape"}}], "outputs": [...]}}: {type(e).__name__}: {e}'
            ) from e

    def v2_metadata(self) -> ModelMetadata:
        if self.metadata is None:
            return super().v2_metadata()
        return self.metadata

    def infer(
        self,
        inputs: dict[str, Array],
        parameters: dict[str, Any],
        outputs: frozenset[str] | None = None,
    ) -> dict[str, Array]:
        if self.metadata is None:
            return super().infer(inputs, parameters, outputs)
        fn = self.model.infer
        if "outputs" in inspect.signature(fn).parameters:
            result = fn(inputs, parameters, outputs=outputs)
        else:
            result = fn(inputs, parameters)
        return {str(k): np.asarray(v) for k, v in dict(result).items()}

    # ------------------------------------------------------------------ text

    def count_tokens(self, text: str) -> int:
        counter = getattr(self.model, "count_tokens", None)
        return int(counter(text)) if callable(counter) else len(text.split())

    def context_length(self) -> int | None:
        fn = getattr(self.model, "context_length", None)
        value = fn() if callable(fn) else None
        return int(value) if value is not None else None

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        if not self.capabilities.chat:
            return super().chat_prompt(messages)
        return str(self.model.chat_prompt(messages))

    def embed(self, texts: list[str]) -> Embeddings:
        if not self.capabilities.embeddings:
            return super().embed(texts)
        out = self.model.embed(texts)
        if isinstance(out, Embeddings):
            return out
        vectors = [[float(x) for x in v] for v in out]
        if len(vectors) != len(texts):
            raise RuntimeError(f"embed() returned {len(vectors)} vectors for {len(texts)} texts")
        return Embeddings(vectors, sum(self.count_tokens(t) for t in texts))

    def generate(
        self, request: GenerationRequest, cancelled: threading.Event
    ) -> Iterator[GenerationChunk]:
        if not self.capabilities.generative:
            return super().generate(request, cancelled)
        prompt_tokens = self.count_tokens(request.prompt)
        limit = self.context_length()
        max_tokens = request.max_tokens
        if limit is not None:
            if prompt_tokens >= limit:
                raise Invalid(
                    f"the prompt is {prompt_tokens} tokens; this model's context length is "
                    f"{limit} tokens",
                    field="prompt",
                )
            room = limit - prompt_tokens
            max_tokens = room if max_tokens is None else min(max_tokens, room)
        pieces = self.model.generate(request, cancelled)
        return _Pieces(pieces, request.stop, prompt_tokens, max_tokens, cancelled).chunks()

    # ------------------------------------------------------------------ lifecycle

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


_OPTIONAL = (
    "predict_batch",
    "predict_stream",
    "generate",
    "chat_prompt",
    "embed",
    "v2_metadata",
    "infer",
)


def _spec(raw: dict[str, Any]) -> TensorSpec:
    return TensorSpec(
        name=str(raw["name"]),
        datatype=str(raw["datatype"]),
        shape=tuple(int(d) for d in raw["shape"]),
        accepts=frozenset(raw.get("accepts", ())),
    )


class _Pieces:
    """Turn what a user's `generate` yields into `GenerationChunk`s.

    `GenerationChunk`s pass through as they are. Text pieces (str, or {"text",
    "finish_reason"}) count one token each; `max_tokens` and the stop sequences are
    applied here, holding back text that may be the start of a stop sequence.
    """

    def __init__(
        self,
        source: Any,
        stop: tuple[str, ...],
        prompt_tokens: int,
        max_tokens: int | None,
        cancelled: threading.Event,
    ) -> None:
        self.source = iter(source)
        self.stop = stop
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.cancelled = cancelled
        self.count = 0

    def _chunk(self, text: str, finish: str | None = None) -> GenerationChunk:
        return GenerationChunk(text, self.prompt_tokens, self.count, finish)

    def chunks(self) -> Iterator[GenerationChunk]:
        pending = ""
        finish = "stop"
        try:
            if self.max_tokens == 0:
                yield self._chunk("", "length")
                return
            for item in self.source:
                if isinstance(item, GenerationChunk):
                    yield item
                    if item.finish_reason is not None:
                        return
                    continue
                text, reason = _piece(item)
                self.count += 1
                pending += text
                cut = _first_stop(pending, self.stop)
                if cut is not None:
                    yield self._chunk(pending[:cut], "stop")
                    return
                hold = _held_back(pending, self.stop)
                if reason is None and self.max_tokens is not None and self.count >= self.max_tokens:
                    reason = "length"
                if reason is not None:
                    yield self._chunk(pending, reason)
                    return
                if len(pending) > hold:
                    yield self._chunk(pending[: len(pending) - hold])
                    pending = pending[len(pending) - hold :]
                if self.cancelled.is_set():
                    return
            yield self._chunk(pending, finish)
        finally:
            close = getattr(self.source, "close", None)
            if callable(close):
                close()


def _piece(item: Any) -> tuple[str, str | None]:
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict) and isinstance(item.get("text", ""), str):
        return item.get("text", ""), item.get("finish_reason")
    raise TypeError(f"generate() must yield str or GenerationChunk, not {type(item).__name__}")


def _first_stop(text: str, stop: tuple[str, ...]) -> int | None:
    found = [i for s in stop if (i := text.find(s)) >= 0]
    return min(found) if found else None


def _held_back(text: str, stop: tuple[str, ...]) -> int:
    """Length of the longest end of `text` that begins some stop sequence."""
    best = 0
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


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


def _serves(cls: type) -> bool:
    return any(callable(getattr(cls, m, None)) for m in SERVING)


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
        and _serves(obj)
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LoadError(
            f"{MODEL_FILE} defines no model class: name it Model, with load(self, path) and "
            "predict(self, inputs, parameters) (or generate, embed, infer)"
        )
    names = ", ".join(sorted(c.__name__ for c in candidates))
    raise LoadError(f"{MODEL_FILE} defines several model classes ({names}); name one Model")


def _check_methods(cls: type) -> None:
    missing = [] if callable(getattr(cls, "load", None)) else ["load"]
    if not _serves(cls):
        missing.append("predict")
    if missing:
        raise LoadError(f"class Model in {MODEL_FILE} has no {' or '.join(missing)} method")
