"""Tiny models, built once per test session, and runtimes loaded from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.runtimes.base import RuntimeConfig
from podium.runtimes.transformers import TransformersRuntime
from tests.support import tiny_models


def load(path: Path, task: str | None = None, *, trust_pickle: bool = False) -> TransformersRuntime:
    config = RuntimeConfig(model_name="test", task=task, trust_pickle=trust_pickle)
    runtime = TransformersRuntime(config)
    runtime.load(path)
    return runtime


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def gpt2_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_gpt2(tiny / "gpt2")


@pytest.fixture(scope="session")
def gpt2_plain_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_gpt2(tiny / "gpt2-plain", chat_template=False)


@pytest.fixture(scope="session")
def classifier_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_bert_classifier(tiny / "classifier")


@pytest.fixture(scope="session")
def ner_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_bert_token_classifier(tiny / "ner")


@pytest.fixture(scope="session")
def mlm_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_bert_mlm(tiny / "mlm")


@pytest.fixture(scope="session")
def nli_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_nli(tiny / "nli")


@pytest.fixture(scope="session")
def encoder_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_bert_encoder(tiny / "encoder")


@pytest.fixture(scope="session")
def vit_path(tiny: Path) -> Path:
    return tiny_models.build_tiny_vit(tiny / "vit")


@pytest.fixture(scope="session")
def gpt2(gpt2_path: Path) -> TransformersRuntime:
    return load(gpt2_path)


@pytest.fixture(scope="session")
def classifier(classifier_path: Path) -> TransformersRuntime:
    return load(classifier_path)


@pytest.fixture(scope="session")
def ner(ner_path: Path) -> TransformersRuntime:
    return load(ner_path)


@pytest.fixture(scope="session")
def mlm(mlm_path: Path) -> TransformersRuntime:
    return load(mlm_path)


@pytest.fixture(scope="session")
def zero_shot(nli_path: Path) -> TransformersRuntime:
    return load(nli_path, task="zero-shot-classification")


@pytest.fixture(scope="session")
def vit(vit_path: Path) -> TransformersRuntime:
    return load(vit_path)


@pytest.fixture(scope="session")
def encoder(encoder_path: Path) -> TransformersRuntime:
    return load(encoder_path)


@pytest.fixture(scope="session")
def minilm() -> TransformersRuntime:
    return load(tiny_models.minilm_path())
