"""The shape of the frameworks catalog (`GET /api/v1/frameworks`), shared by the API that
answers it and the SDK that reads it. What each framework is lives with the runtimes
(`runtimes/catalog.py`); whether it is installed here is told by the API's service."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

QUERY_MAX = 64  # characters of a catalog search


class FrameworkKind(StrEnum):
    BUILTIN = "builtin"  # a runtime shipped with Podium, run in a podium replica
    PRESET = "preset"  # a well-known inference server Podium starts (vllm, tgi, …)
    PLUGIN = "plugin"  # a runtime from a `podium.runtimes` entry point
    COMMAND = "command"  # your own server program (the spec's `command` block)
    CONTAINER = "container"  # your own OCI image (the spec's `container` block)


class GpuNeed(StrEnum):
    REQUIRED = "required"  # refuses to start without a GPU
    OPTIONAL = "optional"  # uses one when the instance type has one
    NONE = "none"  # CPU only


class WireProtocol(StrEnum):
    HF = "hf"  # Hugging Face style `POST /` (and TGI's generate routes)
    OPENAI = "openai"  # /v1/chat/completions, /v1/completions, /v1/embeddings
    V2 = "v2"  # the Open Inference Protocol v2 (KServe, Triton)


class FrameworkPublic(BaseModel):
    """One framework an endpoint may name in `framework:`."""

    name: str
    kind: FrameworkKind
    summary: str = Field(description="what it serves")
    tasks: list[str] = Field(description="tasks it serves (empty: whatever the model does)")
    protocols: list[WireProtocol]
    formats: list[str] = Field(description="model files or layouts it loads")
    gpu: GpuNeed
    requires: str | None = Field(
        description="the Python package or program it needs on the backend (None: nothing)"
    )
    installed: bool = Field(description="its package is importable or its program on PATH")
    usable: bool = Field(description="installed, and a GPU is present when one is required")
    why_not: str | None = Field(None, description="why it is not usable here")
