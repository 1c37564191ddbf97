"""Text encoder tasks: Hugging Face Inference API shapes, parameters, batching."""

from __future__ import annotations

from typing import Any

import pytest

from podium.core.errors import Invalid
from podium.runtimes.transformers import TransformersRuntime


def assert_close(a: Any, b: Any) -> None:
    """Equal, with floats compared to 1e-4 (a padded batch is not bit-identical)."""
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_close(x, y)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key])
    else:
        assert a == b


# ---------------------------------------------------------------------- text-classification


def test_text_classification_shape(classifier: TransformersRuntime) -> None:
    out = classifier.predict("I love this product", {})
    assert isinstance(out, list) and len(out) == 1
    labels = out[0]
    assert [set(d) for d in labels] == [{"label", "score"}] * 2
    assert {d["label"] for d in labels} == {"negative", "positive"}
    assert labels[0]["score"] >= labels[1]["score"]
    assert sum(d["score"] for d in labels) == pytest.approx(1.0)
    assert all(isinstance(d["score"], float) for d in labels)


def test_text_classification_list_and_top_k(classifier: TransformersRuntime) -> None:
    out = classifier.predict(["good", "bad", "fine"], {"top_k": 1})
    assert len(out) == 3 and all(len(labels) == 1 for labels in out)


def test_text_classification_truncates_long_texts(classifier: TransformersRuntime) -> None:
    out = classifier.predict("word " * 500, {})
    assert len(out[0]) == 2


def test_text_classification_bad_parameters(classifier: TransformersRuntime) -> None:
    with pytest.raises(Invalid) as caught:
        classifier.predict("x", {"top_k": 0})
    assert caught.value.field == "parameters.top_k"
    with pytest.raises(Invalid) as caught:
        classifier.predict(42, {})
    assert caught.value.field == "inputs"


def test_text_classification_batch_equals_single(classifier: TransformersRuntime) -> None:
    items: list[Any] = ["short", "a much longer text about the weather today", ["a", "b c"]]
    batched = classifier.predict_batch(items, {})
    assert_close(batched, [classifier.predict(item, {}) for item in items])


# ---------------------------------------------------------------------- token-classification


def test_token_classification_entities(ner: TransformersRuntime) -> None:
    text = "Alice went to Paris"
    entities = ner.predict(text, {})
    assert entities, "the tiny model labels every word as a person"
    for entity in entities:
        assert set(entity) == {"entity_group", "score", "word", "start", "end"}
        assert entity["entity_group"] == "PER"
        assert text[entity["start"] : entity["end"]].lower() == entity["word"]
        assert isinstance(entity["score"], float)


def test_token_classification_no_aggregation(ner: TransformersRuntime) -> None:
    tokens = ner.predict("Alice", {"aggregation_strategy": "none"})
    assert tokens[0]["entity"] == "B-PER" and "index" in tokens[0]
    with pytest.raises(Invalid, match="aggregation_strategy must be one of"):
        ner.predict("Alice", {"aggregation_strategy": "everything"})


def test_token_classification_batch_equals_single(ner: TransformersRuntime) -> None:
    items: list[Any] = ["Bob", "Carol went to London by train", ["Paris", "Berlin is big"]]
    assert_close(ner.predict_batch(items, {}), [ner.predict(item, {}) for item in items])


# ---------------------------------------------------------------------- fill-mask


def test_fill_mask_shape(mlm: TransformersRuntime) -> None:
    out = mlm.predict("the [MASK] is sunny", {"top_k": 3})
    assert len(out) == 3
    for guess in out:
        assert set(guess) == {"score", "token", "token_str", "sequence"}
        assert guess["sequence"].startswith("the") and guess["sequence"].endswith(" is sunny")
        assert guess["token_str"].removeprefix("##") in guess["sequence"]
    assert out[0]["score"] >= out[1]["score"] >= out[2]["score"]


def test_fill_mask_default_top_k_and_list(mlm: TransformersRuntime) -> None:
    out = mlm.predict(["a [MASK] dog", "the [MASK]"], {})
    assert [len(guesses) for guesses in out] == [5, 5]


def test_fill_mask_needs_one_mask(mlm: TransformersRuntime) -> None:
    with pytest.raises(Invalid, match=r"must contain the mask token \[MASK\] once") as caught:
        mlm.predict("no mask here", {})
    assert caught.value.field == "inputs"


def test_fill_mask_batch_equals_single(mlm: TransformersRuntime) -> None:
    items: list[Any] = ["a [MASK]", "the weather today is [MASK] and warm", ["[MASK] cats"]]
    # Every token (clamped to the vocabulary): near-equal scores may swap places.
    params = {"top_k": 1000}

    def by_token(out: Any) -> Any:
        if out and isinstance(out[0], list):
            return [by_token(x) for x in out]
        return sorted(out, key=lambda d: d["token"])

    batched = [by_token(x) for x in mlm.predict_batch(items, params)]
    assert_close(batched, [by_token(mlm.predict(item, params)) for item in items])


# ---------------------------------------------------------------------- zero-shot


def test_zero_shot_shape(zero_shot: TransformersRuntime) -> None:
    labels = ["sports", "politics", "weather"]
    out = zero_shot.predict("It is sunny today", {"candidate_labels": labels})
    assert set(out) == {"sequence", "labels", "scores"}
    assert out["sequence"] == "It is sunny today"
    assert sorted(out["labels"]) == sorted(labels)
    assert out["scores"] == sorted(out["scores"], reverse=True)
    assert sum(out["scores"]) == pytest.approx(1.0)


def test_zero_shot_multi_label_and_comma_string(zero_shot: TransformersRuntime) -> None:
    out = zero_shot.predict(
        ["a", "b"], {"candidate_labels": "sports, politics", "multi_label": True}
    )
    assert len(out) == 2
    assert sorted(out[0]["labels"]) == ["politics", "sports"]
    assert all(0 <= s <= 1 for s in out[0]["scores"])


def test_zero_shot_needs_candidate_labels(zero_shot: TransformersRuntime) -> None:
    with pytest.raises(Invalid, match="candidate_labels") as caught:
        zero_shot.predict("text", {})
    assert caught.value.field == "parameters.candidate_labels"


def test_zero_shot_batch_equals_single(zero_shot: TransformersRuntime) -> None:
    params = {"candidate_labels": ["x", "y"]}
    items: list[Any] = ["one", "two words here"]
    assert_close(
        zero_shot.predict_batch(items, params), [zero_shot.predict(i, params) for i in items]
    )


def test_non_generative_tasks_refuse_generation(classifier: TransformersRuntime) -> None:
    with pytest.raises(Invalid, match="serves text-classification; it does not chat"):
        classifier.chat_prompt([{"role": "user", "content": "hi"}])
    with pytest.raises(Invalid, match="does not make embeddings"):
        classifier.embed(["x"])


def test_zero_shot_refuses_empty_text(zero_shot: TransformersRuntime) -> None:
    with pytest.raises(Invalid, match="must not be empty"):
        zero_shot.predict(" ", {"candidate_labels": ["a"]})
