"""Loading transformers objects from a local folder, safely and quietly.

- Local files only (`local_files_only=True`): nothing is ever fetched from the Hub.
- Never `trust_remote_code`: a model that names its own Python code (`auto_map` in its
  config files, a sentence-transformers module outside that library) is refused before
  transformers sees it, even where transformers would fall back to its own class.
- Weights: safetensors (memory-mapped by transformers). A folder holding only pickled
  PyTorch weights (`pytorch_model.bin`) is refused unless the endpoint trusts pickles.
- The device and dtype `placement` chose (float32 on the CPU, half precision on a GPU,
  unless the endpoint says otherwise); `model.eval()`; torch uses the endpoint's `threads`.
- Failures become `LoadError` with the library's message, so the endpoint's status says why.

Heavy imports (torch, transformers) happen inside the functions.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from podium.core.errors import LoadError
from podium.runtimes.transformers.placement import Chosen, torch_dtype

CPU = Chosen(device="cpu", dtype="float32")

SAFE = (".safetensors",)
PICKLES = (".bin", ".pt", ".pth", ".ckpt")
COMMON: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
AUTO_CLASSES = {
    "text-generation": "AutoModelForCausalLM",
    "text-classification": "AutoModelForSequenceClassification",
    "zero-shot-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "fill-mask": "AutoModelForMaskedLM",
    "image-classification": "AutoModelForImageClassification",
    "feature-extraction": "AutoModel",
}
# Files where a model names its own classes (`auto_map`): model, tokenizer, processors.
CODE_CONFIGS = (
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
)
MAX_CONFIG_BYTES = 1024 * 1024
HUGE = 1_000_000  # tokenizers say model_max_length = 1e30 when they do not know


def module(name: str) -> Any:
    """Import a module of the (optional, untyped for our purposes) libraries on demand."""
    return importlib.import_module(name)


def prepare_torch(threads: int) -> None:
    """Thread count, a fresh random seed (a replica forked from a zygote must not share
    its random state) and no progress bars or info logs from the libraries."""
    import torch

    torch.set_num_threads(max(1, threads))
    torch.seed()
    logging = module("transformers.utils.logging")
    logging.set_verbosity_error()
    logging.disable_progress_bar()


def check_weights(folder: Path, trust_pickle: bool) -> bool:
    """True when the weights are safetensors; LoadError for pickles that are not trusted."""
    files = [p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts]
    if any(p.suffix in SAFE for p in files):
        return True
    pickles = sorted(p.name for p in files if p.suffix in PICKLES)
    if not pickles:
        raise LoadError("no model weights (*.safetensors) in the model folder")
    if not trust_pickle:
        raise LoadError(
            f"the model's weights are pickles ({', '.join(pickles[:3])}), which run code when "
            "loaded; refusing to load them. Save the model with safetensors, or set "
            "trust_pickle: true on the endpoint"
        )
    return False


def check_remote_code(folder: Path) -> None:
    """LoadError when the model names Python code of its own, which is never run."""
    for path in sorted(folder.rglob("*.json")):
        if ".git" in path.parts or path.name not in (*CODE_CONFIGS, "modules.json"):
            continue
        refs = _code_refs(path.name, _small_json(path))
        if refs:
            where = path.relative_to(folder).as_posix()
            raise LoadError(
                f"the model needs its own Python code ({where}: {', '.join(refs[:3])}), which "
                "Podium never runs; use a model whose architecture the installed "
                "transformers provides"
            )


def _small_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # transformers reports unreadable files when it loads them


def _code_refs(name: str, data: Any) -> list[str]:
    """The classes of the model's own code that one config file names."""
    if name == "modules.json":  # sentence-transformers: modules outside the library
        modules = data if isinstance(data, list) else []
        types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
        return [t for t in types if t and not t.startswith("sentence_transformers.")]
    auto_map = data.get("auto_map") if isinstance(data, dict) else None
    if not auto_map:
        return []
    values = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
    refs = [str(v) for value in values for v in (value if isinstance(value, list) else [value])]
    return [r for r in refs if r and r != "None"] or ["auto_map"]


@contextmanager
def load_errors(what: str) -> Iterator[None]:
    """Library exceptions while loading → LoadError naming what was being loaded."""
    try:
        yield
    except LoadError:
        raise
    except Exception as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise LoadError(f"the {what} could not be loaded: {type(e).__name__}: {message}") from e


def load_model(task: str, folder: Path, *, safetensors: bool, where: Chosen = CPU) -> Any:
    auto = getattr(module("transformers"), AUTO_CLASSES[task])
    with load_errors("model"):
        model = auto.from_pretrained(
            folder,
            dtype=torch_dtype(where),
            use_safetensors=True if safetensors else None,
            **COMMON,
        )
        model.to(where.device)  # a CUDA error (out of memory) is a load error too
    model.eval()
    config = model.config
    if getattr(config, "id2label", None) and not getattr(config, "label2id", None):
        # Some configs carry only id2label; pipelines look labels up both ways.
        config.label2id = {label: int(i) for i, label in config.id2label.items()}
    return model


def load_tokenizer(folder: Path) -> Any:
    with load_errors("tokenizer"):
        return module("transformers").AutoTokenizer.from_pretrained(folder, **COMMON)


def load_image_processor(folder: Path) -> Any:
    with load_errors("image processor"):
        return module("transformers").AutoImageProcessor.from_pretrained(folder, **COMMON)


def build_pipeline(task: str, model: Any, **parts: Any) -> Any:
    """A transformers pipeline around objects already loaded (it reads no files), on the
    device the model is on."""
    with load_errors(f"{task} pipeline"):
        return module("transformers").pipeline(task, model=model, device=model.device, **parts)


def max_tokens_of(model: Any, tokenizer: Any | None) -> int | None:
    """The longest input the model takes, in tokens (position embeddings / tokenizer)."""
    config = model.config
    limits = [
        value
        for name in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length")
        if isinstance(value := getattr(config, name, None), int) and value > 0
    ]
    tokenizer_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_max, int) and 0 < tokenizer_max < HUGE:
        limits.append(tokenizer_max)
    return min(limits) if limits else None
