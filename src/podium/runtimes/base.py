"""The Runtime interface: code that loads one kind of model and answers requests.

A replica process builds exactly one runtime, calls `load` once (before it serves any
HTTP), then calls `predict` / `predict_batch` / `infer` from a pool of worker threads.

Lifecycle and threading contract:

- `__init__(config)` must be cheap and never touch the model files.
- `load(path)` runs once; failures raise `LoadError` with a message a user can act on.
- `predict`, `predict_batch` and `infer` may be called concurrently from several threads
  (up to the endpoint's `max_concurrency`); a runtime that is not thread-safe serialises
  internally.
- Bad request data raises `Invalid(..., field=...)` (the replica answers 400); any other
  exception is an internal error (500, traceback to the replica's log).
- `health()` is called on every readiness probe from the event loop: it must return at
  once, without I/O.
- `close()` runs once at shutdown, after the last request.

Which endpoints a replica mounts follows `capabilities`: every runtime answers the
Hugging Face style `POST /`; `tensor` runtimes also serve the Open Inference Protocol v2.

A third-party runtime is a `Runtime` subclass registered under the `podium.runtimes`
entry-point group (see `registry.py`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from podium.core.errors import Invalid
from podium.core.tensors import Array, ModelMetadata


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """What a runtime is told about the endpoint it serves."""

    model_name: str  # the endpoint name
    task: str | None = None  # e.g. "text-classification"; runtimes may ignore it
    threads: int = 1  # CPU threads the runtime may use for one prediction
    trust_pickle: bool = False  # allow pickle-based model files (they run code on load)
    env: Mapping[str, str] = field(default_factory=dict)  # the endpoint's env
    # The endpoint's `engine_args`, as text (e.g. the transformers runtime's device, dtype).
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a runtime can serve, beyond the Hugging Face style `predict`."""

    tensor: bool = False  # `v2_metadata` + `infer`: Open Inference Protocol v2
    batch: bool = False  # `predict_batch` is worth calling with several requests at once
    generative: bool = False  # produces text token by token (OpenAI-style routes)
    streaming: bool = False  # `predict_stream` yields partial results
    embeddings: bool = False  # `embed`: OpenAI /v1/embeddings
    chat: bool = False  # `chat_prompt` can render messages (the tokenizer has a chat template)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One text generation (the OpenAI and Hugging Face routes both map onto this)."""

    prompt: str
    max_tokens: int | None = None  # None: the runtime's default
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class GenerationChunk:
    """A piece of generated text. The last chunk has `finish_reason` ("stop" or "length")."""

    text: str  # new text since the previous chunk
    prompt_tokens: int
    completion_tokens: int  # generated so far, cumulative
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class Runtime(ABC):
    """Base class of every runtime. Subclasses set `name` and implement `load`/`predict`."""

    name: ClassVar[str]
    # Instances may replace this in `load` when it depends on the model (python bundles).
    capabilities: Capabilities = Capabilities()

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config

    @abstractmethod
    def load(self, path: Path) -> None:
        """Load the model from `path` (a folder, or one file). Raise `LoadError` on failure."""

    @abstractmethod
    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        """One request, Hugging Face Inference API style: JSON values in, JSON-able out."""

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        """Several requests' `inputs` sharing the same `parameters`, answered together.

        Returns one output per element of `inputs`, in order. If it raises, the caller may
        retry the requests one by one with `predict`, so one bad request fails alone.
        """
        return [self.predict(item, parameters) for item in inputs]

    def predict_stream(self, inputs: Any, parameters: dict[str, Any]) -> Iterator[Any]:
        """Partial results of one request (only when `capabilities.streaming`)."""
        raise Invalid(f"the {self.name} runtime does not stream", field="parameters.stream")

    def v2_metadata(self) -> ModelMetadata:
        """Named inputs and outputs (only when `capabilities.tensor`)."""
        raise Invalid(f"the {self.name} runtime does not serve tensors", field="inputs")

    def infer(
        self,
        inputs: dict[str, Array],
        parameters: dict[str, Any],
        outputs: frozenset[str] | None = None,
    ) -> dict[str, Array]:
        """Named tensors in, named tensors out (only when `capabilities.tensor`).

        `inputs` were already checked against `v2_metadata()` (names, datatypes, shapes).
        `outputs` names the outputs the client asked for (None: the runtime's default set);
        a runtime may compute only those, and extra outputs it returns are dropped.
        """
        raise Invalid(f"the {self.name} runtime does not serve tensors", field="inputs")

    # ------------------------------------------------ generative and embedding runtimes

    def generate(
        self, request: GenerationRequest, cancelled: threading.Event
    ) -> Iterator[GenerationChunk]:
        """Generate text chunk by chunk (only when `capabilities.generative`).

        Runs in a worker thread. Stop soon after `cancelled` is set (the client went away)
        and free whatever the generation holds. A prompt longer than the model's context
        raises `Invalid(field="prompt")` naming the limit.
        """
        raise Invalid(f"the {self.name} runtime does not generate text", field="model")

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        """Render chat messages into a prompt with the model's chat template (only when
        `capabilities.chat`); `Invalid(field="messages")` when the model has none."""
        raise Invalid(
            "this model has no chat template; use /v1/completions instead", field="messages"
        )

    def embed(self, texts: list[str]) -> Embeddings:
        """One vector per text (only when `capabilities.embeddings`)."""
        raise Invalid(f"the {self.name} runtime does not make embeddings", field="input")

    def context_length(self) -> int | None:
        """Maximum prompt + completion tokens, when the model has such a limit."""
        return None

    def health(self) -> bool:
        """True while the runtime can answer requests. Cheap: no I/O."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release resources (subprocesses, GPU memory) at shutdown."""
