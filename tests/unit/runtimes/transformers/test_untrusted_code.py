"""A transformers model never runs code of its own: pickled weights are refused unless
trusted (and even then torch only loads tensors), and a model that names its own Python
code (`auto_map`, a foreign sentence-transformers module) is refused before transformers
reads it. Each fixture writes a marker file when its code runs
(tests/support/malicious.py); the tests assert the marker never appears."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from podium.core.errors import LoadError
from podium.runtimes.transformers import loading
from tests.support import malicious
from tests.unit.runtimes.transformers.conftest import load

REMOTE_CODE = r"needs its own Python code \({where}: modeling_evil\..*Podium never runs"


def test_the_pickled_weights_are_live(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = malicious.torch_weights(tmp_path / "model", marker)
    assert not marker.exists()
    assert malicious.torch_fires(folder / "pytorch_model.bin", marker)


def test_untrusted_pickled_weights_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = malicious.torch_weights(tmp_path / "model", marker)
    with pytest.raises(LoadError, match=r"pickles \(pytorch_model\.bin\).*trust_pickle: true"):
        load(folder)
    assert not marker.exists(), "the untrusted pickle ran"


def test_trusted_pickled_weights_load_tensors_only(tmp_path: Path) -> None:
    """trust_pickle lets transformers read pytorch_model.bin, with torch's weights-only
    unpickler: a pickle that calls a function is still refused, and never runs."""
    marker = tmp_path / "marker"
    folder = malicious.torch_weights(tmp_path / "model", marker)
    with pytest.raises(LoadError, match="model could not be loaded: UnpicklingError"):
        load(folder, trust_pickle=True)
    assert not marker.exists(), "torch.load ran the pickle"


def test_safetensors_win_over_a_pickle_next_to_them(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = malicious.torch_weights(tmp_path / "model", marker, keep_safetensors=True)
    runtime = load(folder)
    assert runtime.task == "text-classification"
    assert not marker.exists(), "pytorch_model.bin was read although safetensors exist"


def test_the_remote_code_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = malicious.remote_code(tmp_path / "model", marker)
    assert not marker.exists()
    runpy.run_path(str(folder / f"{malicious.REMOTE_MODULE}.py"))  # what an import does
    assert marker.read_text() == malicious.PAYLOAD


@pytest.mark.parametrize("model_type", ["bert", "evil"])
def test_auto_map_in_config_is_refused_and_never_imported(tmp_path: Path, model_type: str) -> None:
    """`bert`: transformers itself would quietly load its own BERT class instead of the
    code the model names; `evil`: it would refuse with a message about trust_remote_code.
    Podium refuses both, in its own words, before transformers reads anything."""
    marker = tmp_path / "marker"
    folder = malicious.remote_code(tmp_path / "model", marker, model_type=model_type)
    with pytest.raises(LoadError, match=REMOTE_CODE.format(where=r"config\.json")):
        load(folder, trust_pickle=True)
    assert not marker.exists(), "the model's own code was imported"


def test_auto_map_in_tokenizer_config_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = malicious.remote_code(tmp_path / "model", marker, config_file="tokenizer_config.json")
    with pytest.raises(LoadError, match=REMOTE_CODE.format(where=r"tokenizer_config\.json")):
        load(folder)
    assert not marker.exists(), "the model's own code was imported"


def test_foreign_sentence_transformers_module_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = malicious.sentence_transformers_module(tmp_path / "model", marker)
    with pytest.raises(LoadError, match=REMOTE_CODE.format(where=r"modules\.json")):
        load(folder)
    assert not marker.exists(), "the model's own code was imported"


def test_a_model_without_code_of_its_own_passes_the_check(classifier_path: Path) -> None:
    loading.check_remote_code(classifier_path)  # no LoadError
