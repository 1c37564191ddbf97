"""image-classification: base64 images in, [{"label", "score"}] out.

`inputs` is one image as base64 text, raw or as a `data:image/...;base64,` URL (standard
or URL-safe alphabet, whitespace ignored). Anything that does not decode to an image
answers 400. Podium never fetches anything: an http(s) URL is refused with a hint.
Parameters: `top_k` (default 5), `function_to_apply` ("sigmoid", "softmax", "none").

`predict_batch` decodes every request's image and classifies them in one forward pass.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from pathlib import Path
from typing import Any

from podium.runtimes.base import Capabilities
from podium.runtimes.transformers import loading
from podium.runtimes.transformers.handler import TaskHandler
from podium.runtimes.transformers.params import get_choice, get_int, invalid, plain
from podium.runtimes.transformers.placement import Chosen
from podium.runtimes.transformers.tasks import IMAGE_CLASSIFICATION

NOT_AN_IMAGE = "inputs is not a valid base64-encoded image"
NO_URLS = "fetching images from URLs is not supported; send the image as base64"
FUNCTIONS = ("sigmoid", "softmax", "none")
_DATA_URL = re.compile(r"^data:[^,]*?;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def decode_image(value: Any) -> Any:
    """A base64 string (or data: URL, or raw bytes) → an RGB PIL image; Invalid otherwise."""
    from PIL import Image

    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.lower().startswith(("http://", "https://")):
            raise invalid(NO_URLS, "inputs")
        text = _WHITESPACE.sub("", _DATA_URL.sub("", text, count=1))
        text = text.replace("-", "+").replace("_", "/")
        try:
            data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise invalid(NOT_AN_IMAGE, "inputs") from None
    else:
        raise invalid(NOT_AN_IMAGE, "inputs")
    if not data:
        raise invalid(NOT_AN_IMAGE, "inputs")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise invalid(NOT_AN_IMAGE, "inputs") from None


class ImageClassificationTask(TaskHandler):
    capabilities = Capabilities(batch=True)

    def __init__(self, pipe: Any) -> None:
        super().__init__(IMAGE_CLASSIFICATION)
        self.pipe = pipe

    @classmethod
    def load(
        cls, folder: Path, *, safetensors: bool, where: Chosen = loading.CPU
    ) -> ImageClassificationTask:
        model = loading.load_model(
            IMAGE_CLASSIFICATION, folder, safetensors=safetensors, where=where
        )
        processor = loading.load_image_processor(folder)
        return cls(loading.build_pipeline(IMAGE_CLASSIFICATION, model, image_processor=processor))

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        return self.predict_batch([inputs], parameters)[0]

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        import torch

        kwargs: dict[str, Any] = {"top_k": get_int(parameters, "top_k", 5)}
        function = get_choice(parameters, "function_to_apply", None, FUNCTIONS)
        if function is not None:
            kwargs["function_to_apply"] = function
        images = [decode_image(item) for item in inputs]
        with self.lock, torch.inference_mode():
            results = self.pipe(images, batch_size=len(images), **kwargs)
        return list(plain(results))

    def close(self) -> None:
        self.pipe = None
