"""Model files that run code when they are loaded: each one writes a marker file.

A test gives each builder the path of a marker that does not exist yet; the model runs
its payload if and only if the marker appears. The payloads use the standard library
only (`pathlib.Path.write_text`), so they are live in any process that unpickles or
imports them, a replica included: `fires()` proves it for the pickles, and the trusted
paths in the tests prove it through the runtimes.

- `sklearn_pickle`: a real iris classifier wrapped in a pickle whose loading first writes
  the marker (`operator.getitem((payload, estimator), 1)`), so a trusted load serves.
- `torch_weights`: a tiny BERT folder whose only weights are `pytorch_model.bin`, a
  torch zip archive whose pickle writes the marker.
- `remote_code`: a tiny BERT folder whose `auto_map` names a module in the folder; importing
  that module writes the marker.
"""

from __future__ import annotations

import json
import operator
import pathlib
import pickle
import shutil
from pathlib import Path
from typing import Any

from tests.support import tiny_models
from tests.support.models import _iris_classifier

PAYLOAD = "pwned"


class WritesMarker:
    """Unpickling this writes PAYLOAD to the marker (the class itself is not needed)."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.write_text, (self.marker, PAYLOAD))


class ThenReturns:
    """Unpickling this runs the payload, then gives `value` back."""

    def __init__(self, marker: Path, value: Any) -> None:
        self.payload = WritesMarker(marker)
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (operator.getitem, ((self.payload, self.value), 1))


def fires(file: Path, marker: Path) -> bool:
    """Load `file` with plain pickle (trusting it): True if the marker appeared."""
    import joblib

    joblib.load(file)
    fired = marker.read_text() == PAYLOAD
    marker.unlink()
    return fired


def sklearn_pickle(dest: Path, marker: Path, filename: str = "model.joblib") -> Path:
    """dest/filename: a pickled iris classifier that writes `marker` when loaded."""
    import joblib

    dest.mkdir(parents=True, exist_ok=True)
    obj = ThenReturns(marker, _iris_classifier())
    if filename.endswith(".joblib"):
        joblib.dump(obj, dest / filename)
    else:
        (dest / filename).write_bytes(pickle.dumps(obj))
    return dest


def torch_weights(dest: Path, marker: Path, *, keep_safetensors: bool = False) -> Path:
    """A tiny BERT classifier folder with a `pytorch_model.bin` that writes `marker`.

    keep_safetensors: keep the real `model.safetensors` next to the pickle.
    """
    import torch

    tiny_models.build_tiny_bert_classifier(dest)
    if not keep_safetensors:
        (dest / "model.safetensors").unlink()
    torch.save(
        {"bert.embeddings.word_embeddings.weight": WritesMarker(marker)}, dest / "pytorch_model.bin"
    )
    return dest


def torch_fires(file: Path, marker: Path) -> bool:
    """torch.load `file` trusting it (weights_only=False): True if the marker appeared."""
    import torch

    torch.load(file, weights_only=False)
    fired = marker.read_text() == PAYLOAD
    marker.unlink()
    return fired


REMOTE_MODULE = "modeling_evil"


def remote_code(
    dest: Path, marker: Path, *, model_type: str = "bert", config_file: str = "config.json"
) -> Path:
    """A tiny BERT classifier whose `config_file` has an `auto_map` naming modeling_evil.py.

    Importing modeling_evil (what trust_remote_code would do) writes `marker`, then
    defines the classes as transformers' own BERT ones, so the code would also work.
    model_type: "bert" (transformers has its own class) or a name it does not know.
    """
    tiny_models.build_tiny_bert_classifier(dest)
    config = json.loads((dest / config_file).read_text(encoding="utf-8"))
    if config_file == "config.json":
        config["auto_map"] = {
            "AutoConfig": f"{REMOTE_MODULE}.EvilConfig",
            "AutoModelForSequenceClassification": f"{REMOTE_MODULE}.EvilModel",
        }
        if model_type != "bert":
            config["model_type"] = model_type
            config["architectures"] = ["EvilForSequenceClassification"]
    else:
        config["auto_map"] = {"AutoTokenizer": [f"{REMOTE_MODULE}.EvilTokenizer", None]}
    (dest / config_file).write_text(json.dumps(config), encoding="utf-8")
    (dest / f"{REMOTE_MODULE}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text({PAYLOAD!r})\n"
        "from transformers import BertConfig as EvilConfig\n"
        "from transformers import BertForSequenceClassification as EvilModel\n"
        "from transformers import PreTrainedTokenizerFast as EvilTokenizer\n",
        encoding="utf-8",
    )
    return dest


def sentence_transformers_module(dest: Path, marker: Path) -> Path:
    """all-MiniLM-L6-v2 with one more module in modules.json: the folder's own code."""
    shutil.copytree(tiny_models.minilm_path(), dest)
    modules = json.loads((dest / "modules.json").read_text(encoding="utf-8"))
    modules.append({"idx": len(modules), "name": "3", "path": "", "type": f"{REMOTE_MODULE}.Evil"})
    (dest / "modules.json").unlink()  # the copy may be read-only, like the package's files
    (dest / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (dest / f"{REMOTE_MODULE}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text({PAYLOAD!r})\n"
        "from sentence_transformers.models import Normalize as Evil\n",
        encoding="utf-8",
    )
    return dest
