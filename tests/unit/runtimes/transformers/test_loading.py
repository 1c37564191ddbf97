"""Finding the folder, choosing the task, refusing what cannot be served."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from podium.core.errors import LoadError
from podium.runtimes.registry import get_runtime, known_runtimes
from podium.runtimes.transformers import TransformersRuntime
from podium.runtimes.transformers.tasks import ModelInfo, read_model_info, resolve_task
from tests.support.tiny_models import minilm_path

from .conftest import load


def info(architecture: str | None, labels: tuple[str, ...] = (), st: bool = False) -> ModelInfo:
    return ModelInfo(Path("."), architecture, None, st, labels)


@pytest.mark.parametrize(
    ("architecture", "task"),
    [
        ("LlamaForCausalLM", "text-generation"),
        ("GPT2LMHeadModel", "text-generation"),
        ("BertForSequenceClassification", "text-classification"),
        ("BertForTokenClassification", "token-classification"),
        ("RobertaForMaskedLM", "fill-mask"),
        ("ViTForImageClassification", "image-classification"),
        ("BertModel", "feature-extraction"),
    ],
)
def test_task_is_inferred_from_the_architecture(architecture: str, task: str) -> None:
    assert resolve_task(None, info(architecture)) == task


def test_sentence_transformers_folder_is_feature_extraction() -> None:
    assert resolve_task(None, info("BertModel", st=True)) == "feature-extraction"
    assert read_model_info(minilm_path()).sentence_transformers


def test_nli_models_also_serve_zero_shot() -> None:
    nli = info("BertForSequenceClassification", ("contradiction", "neutral", "entailment"))
    assert resolve_task(None, nli) == "text-classification"
    assert resolve_task("zero-shot-classification", nli) == "zero-shot-classification"


def test_aliases() -> None:
    assert resolve_task("sentiment-analysis", info("BertForSequenceClassification")) == (
        "text-classification"
    )
    assert resolve_task("ner", info("BertForTokenClassification")) == "token-classification"


def test_unsupported_head_and_unknown_task() -> None:
    with pytest.raises(LoadError, match=r"BertForQuestionAnswering\) serves none"):
        resolve_task(None, info("BertForQuestionAnswering"))
    with pytest.raises(LoadError, match="does not serve the task 'summarization'"):
        resolve_task("summarization", info("T5ForConditionalGeneration"))
    with pytest.raises(LoadError, match="set task on the endpoint"):
        resolve_task(None, info(None))


def test_task_inferred_when_loading(
    classifier: TransformersRuntime, gpt2: TransformersRuntime
) -> None:
    assert classifier.task == "text-classification"
    assert gpt2.task == "text-generation"
    assert gpt2.capabilities.generative and gpt2.capabilities.streaming
    assert classifier.capabilities.batch and not classifier.capabilities.generative


def test_task_mismatch_is_a_load_error(mlm_path: Path) -> None:
    with pytest.raises(LoadError) as caught:
        load(mlm_path, task="text-generation")
    assert str(caught.value) == (
        "this model (BertForMaskedLM) cannot serve text-generation; "
        "it serves fill-mask, feature-extraction"
    )


def test_zero_shot_needs_an_entailment_label(classifier_path: Path) -> None:
    with pytest.raises(LoadError, match="entailment label; this model's labels are: negative"):
        load(classifier_path, task="zero-shot-classification")


def test_a_head_model_can_serve_feature_extraction(classifier_path: Path) -> None:
    runtime = load(classifier_path, task="feature-extraction")
    assert runtime.capabilities.embeddings
    assert len(runtime.predict("hello", {})[0]) == 32


def test_missing_folder_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="does not exist"):
        load(tmp_path / "nope")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(LoadError, match="is a file"):
        load(tmp_path / "weights.bin")
    with pytest.raises(LoadError, match=r"no config\.json in the model folder; found: weights"):
        load(tmp_path)


def test_a_single_subfolder_is_looked_into(classifier_path: Path, tmp_path: Path) -> None:
    shutil.copytree(classifier_path, tmp_path / "model")
    assert load(tmp_path).task == "text-classification"


def test_pickled_weights_are_refused_unless_trusted(tmp_path: Path) -> None:
    config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(LoadError, match=r"pickles \(pytorch_model\.bin\).*trust_pickle: true"):
        load(tmp_path)


def test_no_weights_at_all(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(LoadError, match="no model weights"):
        load(tmp_path)


def test_registered_as_a_builtin() -> None:
    assert "transformers" in known_runtimes()
    assert get_runtime("transformers") is TransformersRuntime


def test_importing_the_runtime_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from podium.runtimes.registry import get_runtime\n"
        "get_runtime('transformers')\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'PIL') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
