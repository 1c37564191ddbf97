"""image-classification: base64 images, refusals, batching."""

from __future__ import annotations

import base64

import pytest

from podium.core.errors import Invalid
from podium.runtimes.transformers import TransformersRuntime
from tests.support.tiny_models import png_base64

NOT_AN_IMAGE = "inputs is not a valid base64-encoded image"


def test_base64_image_is_classified(vit: TransformersRuntime) -> None:
    out = vit.predict(png_base64(), {})
    assert [set(d) for d in out] == [{"label", "score"}] * 3
    assert {d["label"] for d in out} == {"cat", "dog", "bird"}
    assert out[0]["score"] >= out[1]["score"] >= out[2]["score"]
    assert vit.capabilities.batch


def test_data_url_and_top_k(vit: TransformersRuntime) -> None:
    out = vit.predict("data:image/png;base64," + png_base64(48), {"top_k": 1})
    assert len(out) == 1


@pytest.mark.parametrize(
    "inputs",
    ["!!! not base64 !!!", base64.b64encode(b"hello, not an image").decode(), "", 7],
)
def test_not_an_image(vit: TransformersRuntime, inputs: object) -> None:
    with pytest.raises(Invalid) as caught:
        vit.predict(inputs, {})
    assert str(caught.value) == NOT_AN_IMAGE
    assert caught.value.field == "inputs"


def test_urls_are_never_fetched(vit: TransformersRuntime) -> None:
    with pytest.raises(Invalid) as caught:
        vit.predict("https://example.com/cat.png", {})
    assert str(caught.value) == (
        "fetching images from URLs is not supported; send the image as base64"
    )
    assert caught.value.field == "inputs"


def test_batch_equals_single(vit: TransformersRuntime) -> None:
    items = [png_base64(32), png_base64(40)]
    batched = vit.predict_batch(items, {})
    for got, item in zip(batched, items, strict=True):
        single = vit.predict(item, {})
        assert [d["label"] for d in got] == [d["label"] for d in single]
        assert [d["score"] for d in got] == pytest.approx([d["score"] for d in single], rel=1e-4)
