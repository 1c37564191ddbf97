"""`TransformersRuntime`: Hugging Face models from a local folder, one task per endpoint.

`load` finds the folder (config.json or modules.json), refuses a model that names its
own Python code (`auto_map`), decides the task (the endpoint's
`task`, checked against the model, or inferred from its architecture: `tasks.py`),
checks the weights (safetensors unless pickles are trusted), prepares torch (threads,
seed, quiet), chooses the device and dtype (`placement`: the replica's GPU when it has
one, overridable by the endpoint's `engine_args`) and builds the handler for the task;
the runtime then delegates every call to it. `capabilities` follow the task:

    text-generation           generative, streaming, chat (when the tokenizer has a
                              chat template)                          generation.py
    feature-extraction        embeddings, batch                       embeddings.py
    text-classification, token-classification, fill-mask,
    zero-shot-classification  batch                                   encoders.py
    image-classification      batch                                   images.py

This module imports nothing heavy; torch and transformers are imported by `load`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from podium.core.errors import LoadError
from podium.runtimes.base import (
    Embeddings,
    GenerationChunk,
    GenerationRequest,
    Runtime,
    RuntimeConfig,
)
from podium.runtimes.transformers import loading, placement, tasks
from podium.runtimes.transformers.handler import TaskHandler


class TransformersRuntime(Runtime):
    name = "transformers"

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.task: str | None = None
        self._handler: TaskHandler | None = None
        self.placement: placement.Chosen | None = None  # where the model runs, once loaded

    def load(self, path: Path) -> None:
        folder = tasks.find_model_folder(path)
        loading.check_remote_code(folder)  # before anything reads the model with transformers
        info = tasks.read_model_info(folder)
        task = tasks.resolve_task(self.config.task, info)
        safetensors = loading.check_weights(folder, self.config.trust_pickle)
        try:
            loading.prepare_torch(self.config.threads)
            where = placement.resolve(self.config.options)
            handler = _build(task, info, safetensors, where)
        except ImportError as e:  # the optional dependencies are not installed
            raise LoadError(
                f"the transformers runtime needs podium[transformers] installed: {e}"
            ) from e
        self.task, self.placement = task, where
        self._handler = handler
        self.capabilities = handler.capabilities

    @property
    def handler(self) -> TaskHandler:
        if self._handler is None:
            raise RuntimeError("the model is not loaded")
        return self._handler

    # ------------------------------------------------------------------ delegation

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        return self.handler.predict(inputs, parameters)

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        return self.handler.predict_batch(inputs, parameters)

    def predict_stream(self, inputs: Any, parameters: dict[str, Any]) -> Iterator[Any]:
        return self.handler.predict_stream(inputs, parameters)

    def generate(
        self, request: GenerationRequest, cancelled: threading.Event
    ) -> Iterator[GenerationChunk]:
        return self.handler.generate(request, cancelled)

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        return self.handler.chat_prompt(messages)

    def embed(self, texts: list[str]) -> Embeddings:
        return self.handler.embed(texts)

    def context_length(self) -> int | None:
        return self.handler.context_length() if self._handler is not None else None

    def health(self) -> bool:
        return self._handler is not None

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None


def _build(
    task: str, info: tasks.ModelInfo, safetensors: bool, where: placement.Chosen
) -> TaskHandler:
    """The handler for `task`, loaded from the folder onto `where` (imports its module
    now)."""
    if task == tasks.TEXT_GENERATION:
        from podium.runtimes.transformers.generation import GenerationTask

        return GenerationTask.load(info.folder, safetensors=safetensors, where=where)
    if task == tasks.FEATURE_EXTRACTION:
        from podium.runtimes.transformers.embeddings import EmbeddingTask

        return EmbeddingTask.load(info, safetensors=safetensors, where=where)
    if task == tasks.IMAGE_CLASSIFICATION:
        from podium.runtimes.transformers.images import ImageClassificationTask

        return ImageClassificationTask.load(info.folder, safetensors=safetensors, where=where)
    from podium.runtimes.transformers.encoders import TextPipelineTask

    return TextPipelineTask.load(task, info.folder, safetensors=safetensors, where=where)
