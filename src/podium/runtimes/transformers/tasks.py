"""Which task a model folder serves: read from its files, never by loading weights.

A folder is either a `save_pretrained` layout (config.json, weights, tokenizer or image
processor) or a sentence-transformers folder (modules.json). The task comes from the
endpoint (`RuntimeConfig.task`, aliases accepted) or is inferred from the architecture
named in config.json:

    *ForCausalLM, *LMHeadModel      text-generation
    *ForSequenceClassification      text-classification (+ zero-shot-classification when
                                    a label names entailment: an NLI model)
    *ForTokenClassification         token-classification
    *ForMaskedLM                    fill-mask
    *ForImageClassification         image-classification
    a bare encoder (BertModel), or
    a sentence-transformers folder  feature-extraction

Every text model can also serve feature-extraction (mean pooling of its encoder), listed
after its own task. Pure functions over JSON files: no torch, no transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.core.errors import LoadError

TEXT_GENERATION = "text-generation"
FEATURE_EXTRACTION = "feature-extraction"
TEXT_CLASSIFICATION = "text-classification"
TOKEN_CLASSIFICATION = "token-classification"
FILL_MASK = "fill-mask"
ZERO_SHOT = "zero-shot-classification"
IMAGE_CLASSIFICATION = "image-classification"

TASKS = (
    TEXT_GENERATION,
    FEATURE_EXTRACTION,
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    FILL_MASK,
    ZERO_SHOT,
    IMAGE_CLASSIFICATION,
)
ALIASES = {
    "sentiment-analysis": TEXT_CLASSIFICATION,
    "ner": TOKEN_CLASSIFICATION,
    "embeddings": FEATURE_EXTRACTION,
    "sentence-embeddings": FEATURE_EXTRACTION,
}
# (architecture suffix, task), first match wins.
SUFFIXES = (
    ("ForCausalLM", TEXT_GENERATION),
    ("LMHeadModel", TEXT_GENERATION),
    ("ForSequenceClassification", TEXT_CLASSIFICATION),
    ("ForTokenClassification", TOKEN_CLASSIFICATION),
    ("ForMaskedLM", FILL_MASK),
    ("ForImageClassification", IMAGE_CLASSIFICATION),
)
CONFIG = "config.json"
MODULES = "modules.json"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the folder's JSON files say about the model."""

    folder: Path
    architecture: str | None  # config.json "architectures"[0]
    model_type: str | None
    sentence_transformers: bool  # modules.json present
    labels: tuple[str, ...] = ()  # id2label values, by id

    @property
    def description(self) -> str:
        if self.sentence_transformers:
            return "a sentence-transformers model"
        return self.architecture or self.model_type or "unknown architecture"


def find_model_folder(path: Path) -> Path:
    """The folder holding config.json or modules.json: `path`, or its only subfolder."""
    if not path.exists():
        raise LoadError(f"model path {path} does not exist")
    if path.is_file():
        raise LoadError(
            f"{path.name} is a file; the transformers runtime loads a folder "
            "(save_pretrained layout, or a sentence-transformers folder)"
        )
    if (path / CONFIG).is_file() or (path / MODULES).is_file():
        return path
    children = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(children) == 1 and (
        (children[0] / CONFIG).is_file() or (children[0] / MODULES).is_file()
    ):
        return children[0]
    listing = ", ".join(sorted(p.name for p in path.iterdir())[:20]) or "nothing"
    raise LoadError(f"no {CONFIG} in the model folder; found: {listing}")


def read_model_info(folder: Path) -> ModelInfo:
    config: dict[str, Any] = {}
    if (folder / CONFIG).is_file():
        try:
            loaded = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise LoadError(f"{CONFIG} is not valid JSON: {e}") from None
        if not isinstance(loaded, dict):
            raise LoadError(f"{CONFIG} must hold a JSON object")
        config = loaded
    architectures = config.get("architectures")
    architecture = (
        str(architectures[0]) if isinstance(architectures, list) and architectures else None
    )
    model_type = config.get("model_type")
    return ModelInfo(
        folder=folder,
        architecture=architecture,
        model_type=str(model_type) if model_type else None,
        sentence_transformers=(folder / MODULES).is_file(),
        labels=_labels(config.get("id2label")),
    )


def _labels(id2label: Any) -> tuple[str, ...]:
    if not isinstance(id2label, dict):
        return ()
    try:
        return tuple(str(v) for _, v in sorted((int(k), v) for k, v in id2label.items()))
    except (TypeError, ValueError):
        return ()


def entailment_label(labels: tuple[str, ...]) -> str | None:
    """The NLI label meaning entailment, if the model has one."""
    return next((label for label in labels if label.lower().startswith("entail")), None)


def served_tasks(info: ModelInfo) -> tuple[str, ...]:
    """The tasks this model can serve, its own task first; () when none is supported."""
    if info.sentence_transformers:
        return (FEATURE_EXTRACTION,)
    arch = info.architecture
    if arch is None:
        return ()
    for suffix, task in SUFFIXES:
        if arch.endswith(suffix):
            tasks = [task]
            if task == TEXT_CLASSIFICATION and entailment_label(info.labels):
                tasks.append(ZERO_SHOT)
            if task != IMAGE_CLASSIFICATION:
                tasks.append(FEATURE_EXTRACTION)
            return tuple(tasks)
    if "For" not in arch and arch.endswith("Model"):
        return (FEATURE_EXTRACTION,)
    return ()


def resolve_task(requested: str | None, info: ModelInfo) -> str:
    """The task to serve: the endpoint's (checked against the model), or the inferred one."""
    served = served_tasks(info)
    supported = ", ".join(TASKS)
    if requested:
        task = ALIASES.get(requested, requested)
        if task not in TASKS:
            raise LoadError(
                f"the transformers runtime does not serve the task {requested!r}; "
                f"supported: {supported}"
            )
        if info.architecture is None and not info.sentence_transformers:
            return task  # nothing to check against: the model class will tell at load
        if task in served:
            return task
        if task == ZERO_SHOT and TEXT_CLASSIFICATION in served:
            labels = ", ".join(info.labels) or "none"
            raise LoadError(
                "zero-shot-classification needs an NLI model with an entailment label; "
                f"this model's labels are: {labels}"
            )
        can = ", ".join(served) if served else "none of the tasks this runtime supports"
        raise LoadError(f"this model ({info.description}) cannot serve {task}; it serves {can}")
    if served:
        return served[0]
    if info.architecture is None:
        raise LoadError(
            f"cannot tell the model's task: {CONFIG} names no architecture; "
            f"set task on the endpoint (one of {supported})"
        )
    raise LoadError(
        f"this model ({info.description}) serves none of the tasks the transformers "
        f"runtime supports ({supported})"
    )
