"""What each framework is, for the catalog (`GET /api/v1/frameworks`): a table, so that
listing frameworks never imports a runtime module (no numpy, scikit-learn or torch).

Built-ins and presets are described here; whether each one is installed is told by the
API's catalog service (`importlib.util.find_spec` for a package, PATH for a program).
Third-party runtimes (`podium.runtimes` entry points) are listed with their
distribution's summary: what they serve is only known once they are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint

from podium.core.catalog_schemas import FrameworkKind, GpuNeed, WireProtocol
from podium.runtimes.presets import COMMAND, CONTAINER, PRESETS
from podium.runtimes.registry import BUILTIN, plugins

_HF, _OPENAI, _V2 = WireProtocol.HF, WireProtocol.OPENAI, WireProtocol.V2

# The transformers runtime's tasks (runtimes/transformers/tasks.py TASKS; a test keeps
# them in step without this module importing that package).
TRANSFORMERS_TASKS = (
    "text-generation",
    "feature-extraction",
    "text-classification",
    "token-classification",
    "fill-mask",
    "zero-shot-classification",
    "image-classification",
)
LLM_TASKS = ("text-generation", "feature-extraction")


@dataclass(frozen=True, slots=True)
class Framework:
    """One framework: what it serves and what it needs. `package` is a Python package the
    replica's interpreter must import; `program` a program on the backend's PATH."""

    name: str
    kind: FrameworkKind
    summary: str
    tasks: tuple[str, ...] = ()
    protocols: tuple[WireProtocol, ...] = ()
    formats: tuple[str, ...] = ()
    gpu: GpuNeed = GpuNeed.NONE
    package: str | None = None
    program: str | None = None


_BUILTINS = (
    Framework(
        "sklearn",
        FrameworkKind.BUILTIN,
        "scikit-learn estimators and pipelines (predict, predict_proba)",
        ("tabular-classification", "tabular-regression"),
        (_HF, _V2),
        (".skops", ".joblib / .pkl (with trust_pickle)"),
        package="sklearn",
    ),
    Framework(
        "onnx",
        FrameworkKind.BUILTIN,
        "ONNX models on onnxruntime (CPU), any tensor inputs and outputs",
        (),
        (_HF, _V2),
        (".onnx",),
        package="onnxruntime",
    ),
    Framework(
        "python",
        FrameworkKind.BUILTIN,
        "your own model class in a bundle's model.py (predict, generate, embed, infer)",
        (),
        (_HF, _OPENAI, _V2),
        ("bundle folder with model.py (+ requirements.txt)",),
    ),
    Framework(
        "transformers",
        FrameworkKind.BUILTIN,
        "Hugging Face transformers and sentence-transformers models",
        TRANSFORMERS_TASKS,
        (_HF, _OPENAI),
        ("save_pretrained folder (safetensors)", "sentence-transformers folder", "hf://ORG/NAME"),
        GpuNeed.OPTIONAL,
        package="transformers",
    ),
)

# What each preset serves; how it is started is in presets.PRESETS.
_PRESET_TEXT: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], GpuNeed]] = {
    "vllm": (
        "vLLM: fast LLM serving with paged attention and continuous batching",
        LLM_TASKS,
        ("Hugging Face folder (safetensors)",),
        GpuNeed.REQUIRED,
    ),
    "sglang": (
        "SGLang: LLM and multimodal serving with RadixAttention",
        LLM_TASKS,
        ("Hugging Face folder (safetensors)",),
        GpuNeed.REQUIRED,
    ),
    "tgi": (
        "Text Generation Inference (Hugging Face): LLM serving",
        ("text-generation",),
        ("Hugging Face folder (safetensors)",),
        GpuNeed.REQUIRED,
    ),
    "llama.cpp": (
        "llama.cpp server: quantized LLMs on CPU or GPU",
        LLM_TASKS,
        (".gguf",),
        GpuNeed.OPTIONAL,
    ),
    "triton": (
        "NVIDIA Triton Inference Server: a model repository of ONNX, TensorRT, PyTorch, …",
        (),
        ("Triton model repository",),
        GpuNeed.OPTIONAL,
    ),
    "torchserve": (
        "TorchServe: PyTorch models packaged as .mar archives (its own REST API)",
        (),
        (".mar model store",),
        GpuNeed.OPTIONAL,
    ),
}

_COMMAND = Framework(
    COMMAND,
    FrameworkKind.COMMAND,
    "your own server program, started with the spec's command block",
    gpu=GpuNeed.OPTIONAL,
    formats=("anything your program reads",),
)

# Needs a container engine on the node, not a package or a program of its own: the API's
# catalog service says whether this server has one.
_CONTAINER = Framework(
    CONTAINER,
    FrameworkKind.CONTAINER,
    "your own OCI image (podman or docker), run with the spec's container block",
    gpu=GpuNeed.OPTIONAL,  # the instance type's GPUs are passed into the container
    formats=("anything your image reads, mounted read-only at /repository",),
)


def _presets() -> list[Framework]:
    out = []
    for name, preset in PRESETS.items():
        summary, tasks, formats, gpu = _PRESET_TEXT[name]
        out.append(
            Framework(
                name,
                FrameworkKind.PRESET,
                summary,
                tasks,
                (_OPENAI,) if preset.openai else ((_V2,) if name == "triton" else ()),
                formats,
                GpuNeed.REQUIRED if preset.needs_gpu else gpu,
                package=preset.package,
                program=None if preset.package else preset.program,
            )
        )
    return out


def _plugin(name: str, ep: EntryPoint) -> Framework:
    summary = f"third-party runtime {ep.value}"
    dist = ep.dist
    if dist is not None:
        said = dist.metadata.json.get("summary")
        if isinstance(said, str) and said:
            summary = f"{said} ({dist.name})"
        else:
            summary = f"third-party runtime from {dist.name}"
    return Framework(name, FrameworkKind.PLUGIN, summary, gpu=GpuNeed.OPTIONAL)


def frameworks() -> list[Framework]:
    """Every framework an endpoint may name, sorted by name. Imports no runtime module."""
    builtins = [f for f in _BUILTINS if f.name in BUILTIN]
    found = [*builtins, *_presets(), _COMMAND, _CONTAINER]
    found += [_plugin(name, ep) for name, ep in plugins().items()]
    return sorted(found, key=lambda f: f.name)
