"""`TaskHandler`: what the runtime delegates to once it knows the model's task.

One handler class per family of tasks (pipelines for text encoders, images, embeddings,
generation). A handler is built by `load(...)` from a folder and answers the calls the
`Runtime` interface defines; what it cannot do raises `Invalid` naming the endpoint's task.

Every forward pass runs under the handler's lock and `torch.inference_mode()`: calls are
serialised per replica, and each uses the `threads` CPU threads the endpoint was given.
Dynamic batching (`predict_batch`), not concurrency, is how a replica gets throughput.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from podium.core.errors import Invalid
from podium.runtimes.base import Capabilities, Embeddings, GenerationChunk, GenerationRequest


class TaskHandler(ABC):
    """Base of every handler: `predict` is required, the rest answer `Invalid`."""

    task: str
    capabilities: Capabilities = Capabilities()

    def __init__(self, task: str) -> None:
        self.task = task
        self.lock = threading.Lock()

    @abstractmethod
    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        """One request, Hugging Face Inference API style."""

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        return [self.predict(item, parameters) for item in inputs]

    def predict_stream(self, inputs: Any, parameters: dict[str, Any]) -> Iterator[Any]:
        raise Invalid(
            f"this endpoint serves {self.task}, which does not stream", field="parameters.stream"
        )

    def generate(
        self, request: GenerationRequest, cancelled: threading.Event
    ) -> Iterator[GenerationChunk]:
        raise Invalid(f"this endpoint serves {self.task}; it does not generate text", field="model")

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        raise Invalid(f"this endpoint serves {self.task}; it does not chat", field="messages")

    def embed(self, texts: list[str]) -> Embeddings:
        raise Invalid(
            f"this endpoint serves {self.task}; it does not make embeddings", field="input"
        )

    def context_length(self) -> int | None:
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Drop references to the model so its memory can go."""
