"""feature-extraction: all-MiniLM-L6-v2 (real) and a tiny mean-pooled encoder."""

from __future__ import annotations

import math

import pytest

from podium.core.errors import Invalid
from podium.runtimes.transformers import TransformersRuntime


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def test_minilm_embeddings(minilm: TransformersRuntime) -> None:
    assert minilm.task == "feature-extraction"
    assert minilm.capabilities.embeddings and minilm.capabilities.batch
    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply on Monday.",
    ]
    result = minilm.embed(texts)
    assert len(result.vectors) == 3
    assert all(len(v) == 384 for v in result.vectors)
    assert all(norm(v) == pytest.approx(1.0, abs=1e-4) for v in result.vectors)
    food, bread, stocks = result.vectors
    assert cosine(food, bread) > cosine(food, stocks) + 0.2
    assert result.prompt_tokens > 3 * 3  # [CLS] + words + [SEP] for each text
    assert minilm.context_length() == 256


def test_minilm_predict_shape(minilm: TransformersRuntime) -> None:
    one = minilm.predict("hello world", {})
    assert len(one) == 1 and len(one[0]) == 384 and isinstance(one[0][0], float)
    two = minilm.predict(["hello", "world"], {"normalize": True})
    assert len(two) == 2
    assert two[0] == pytest.approx(minilm.embed(["hello"]).vectors[0], abs=1e-5)


def test_minilm_batch_equals_single(minilm: TransformersRuntime) -> None:
    items: list[object] = ["short", "a longer sentence about the weather", ["x", "y z"]]
    batched = minilm.predict_batch(items, {})
    for got, item in zip(batched, items, strict=True):
        single = minilm.predict(item, {})
        assert len(got) == len(single)
        for a, b in zip(got, single, strict=True):
            assert a == pytest.approx(b, abs=1e-5)


def test_truncate_false_refuses_long_inputs(minilm: TransformersRuntime) -> None:
    assert len(minilm.predict("word " * 1000, {})[0]) == 384  # truncated by default
    with pytest.raises(Invalid, match="this model takes at most 256") as caught:
        minilm.predict("word " * 1000, {"truncate": False})
    assert caught.value.field == "inputs"


def test_unknown_prompt_name(minilm: TransformersRuntime) -> None:
    with pytest.raises(Invalid) as caught:
        minilm.predict("x", {"prompt_name": "nope"})
    assert caught.value.field == "parameters.prompt_name"


def test_embed_needs_texts(minilm: TransformersRuntime) -> None:
    with pytest.raises(Invalid) as caught:
        minilm.embed([])
    assert caught.value.field == "input"


def test_bare_encoder_is_mean_pooled(encoder: TransformersRuntime) -> None:
    assert encoder.task == "feature-extraction"
    raw = encoder.predict("hello world", {})[0]
    unit = encoder.predict("hello world", {"normalize": True})[0]
    assert len(raw) == 32
    assert norm(unit) == pytest.approx(1.0, abs=1e-5)
    assert cosine(raw, unit) == pytest.approx(1.0, abs=1e-5)
    embedded = encoder.embed(["hello world", "x"])
    assert embedded.vectors[0] == pytest.approx(unit, abs=1e-5)
    tokenizer = encoder.handler.tokenizer  # type: ignore[attr-defined]
    expected = sum(len(tokenizer(t)["input_ids"]) for t in ["hello world", "x"])
    assert embedded.prompt_tokens == expected >= 2 + 2 + 3  # [CLS] … [SEP] each


def test_bare_encoder_batch_equals_single(encoder: TransformersRuntime) -> None:
    items: list[object] = ["one", "two words and a few more", ["a", "b"]]
    batched = encoder.predict_batch(items, {})
    for got, item in zip(batched, items, strict=True):
        for a, b in zip(got, encoder.predict(item, {}), strict=True):
            assert a == pytest.approx(b, abs=1e-5)
