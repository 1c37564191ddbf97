"""Python-runtime bundles that exercise every protocol without torch.

`write_llm_bundle`: a "language model" whose answer to a prompt is `echo:` followed by
the prompt's words, one token each; context length 64 words. Markers in the prompt:
  [block]   after the first token, wait until `state/release` exists (or the client left)
  [endless] tokens until cancelled (yielded as `GenerationChunk`s, so nothing limits them)
  [boom]    fail after the first token
Whenever a generation ends, `state/generations.log` gets a line "<marker> cancelled=<bool>".
`write_embedder_bundle`: 4-number embeddings. `write_batch_bundle`: a classifier with
`predict_batch` that logs each batch's size to `state/batches.log`; the input "poison" makes
any batch that holds it fail. `write_tensor_bundle`: Open Inference Protocol v2 tensors.
"""

from __future__ import annotations

from pathlib import Path

LLM = """\
import time
from pathlib import Path

from podium.runtimes.base import GenerationChunk

STATE = Path({state!r})
MARKERS = ("[block]", "[endless]", "[boom]")


class Model:
    def load(self, path):
        STATE.mkdir(parents=True, exist_ok=True)

    def context_length(self):
        return 64

    def count_tokens(self, text):
        return len(text.split())
{chat}
    def generate(self, request, cancelled):
        marker = next((m for m in MARKERS if m in request.prompt), "-")
        try:
            yield "echo:"
            if marker == "[boom]":
                raise RuntimeError("the model broke mid-stream")
            if marker == "[block]":
                (STATE / "started").touch()
                while not (STATE / "release").exists() and not cancelled.wait(0.01):
                    pass
            if marker == "[endless]":
                # GenerationChunks pass through as they are: no max_tokens, no context limit.
                n = 1
                while not cancelled.is_set():
                    n += 1
                    yield GenerationChunk(" tick", 1, n)
                    time.sleep(0.002)
            words = [w for w in request.prompt.split() if w not in MARKERS]
            for word in words:
                yield " " + word
        finally:
            with (STATE / "generations.log").open("a") as log:
                log.write(f"{{marker}} cancelled={{cancelled.is_set()}}\\n")
"""

CHAT = """
    def chat_prompt(self, messages):
        lines = [m["role"] + ": " + m["content"] for m in messages]
        return " ".join(lines) + " assistant:"
"""

EMBEDDER = """\
import math


class Model:
    def load(self, path):
        pass

    def embed(self, texts):
        out = []
        for t in texts:
            v = [len(t), t.count("a"), t.count("e"), 1.0]
            norm = math.sqrt(sum(x * x for x in v))
            out.append([x / norm for x in v])
        return out
"""

BATCH = """\
from pathlib import Path

STATE = Path({state!r})


class Model:
    def load(self, path):
        STATE.mkdir(parents=True, exist_ok=True)

    def predict(self, inputs, parameters):
        return self.predict_batch([inputs], parameters)[0]

    def predict_batch(self, inputs, parameters):
        with (STATE / "batches.log").open("a") as log:
            log.write(f"{{len(inputs)}}\\n")
        if "poison" in inputs:
            raise ValueError("poisoned input")
        label = "POSITIVE" if parameters.get("flip") else "NEGATIVE"
        other = "NEGATIVE" if label == "POSITIVE" else "POSITIVE"
        return [
            [{{"label": label if "good" in str(x) else other, "score": 0.9}},
             {{"label": other if "good" in str(x) else label, "score": 0.1}}]
            for x in inputs
        ]
"""

TENSOR = """\
import json

import numpy as np

OTHER = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
         "FP16", "FP64", "BYTES"]


class Model:
    def load(self, path):
        pass

    def v2_metadata(self):
        return {{
            "platform": "python",
            "inputs": [{{"name": "x", "datatype": "FP32", "shape": [-1, -1], "accepts": OTHER}}],
            "outputs": [
                {{"name": "y", "datatype": "FP32", "shape": [-1, -1]}},
                {{"name": "count", "datatype": "INT64", "shape": [1]}},
                {{"name": "params", "datatype": "BYTES", "shape": [1]}},
            ],
        }}

    def infer(self, inputs, parameters):
        x = inputs["x"]
        if x.dtype == object:
            y = np.array([s.upper() for s in x.ravel()], dtype=object).reshape(x.shape)
        elif x.dtype == bool:
            y = ~x
        else:
            y = x * 2
        return {{
            "y": y,
            "count": np.array([x.size], dtype=np.int64),
            "params": np.array([json.dumps(parameters, sort_keys=True)], dtype=object),
        }}
"""


def _write(dest: Path, source: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "model.py").write_text(source, encoding="utf-8")
    return dest


def write_llm_bundle(dest: Path, state: Path, *, chat: bool = True) -> Path:
    return _write(dest, LLM.format(state=str(state), chat=CHAT if chat else ""))


def write_embedder_bundle(dest: Path) -> Path:
    return _write(dest, EMBEDDER)


def write_batch_bundle(dest: Path, state: Path) -> Path:
    return _write(dest, BATCH.format(state=str(state)))


def write_tensor_bundle(dest: Path) -> Path:
    return _write(dest, TENSOR.format())


def generations(state: Path) -> list[str]:
    log = state / "generations.log"
    return log.read_text().splitlines() if log.exists() else []


def batch_sizes(state: Path) -> list[int]:
    log = state / "batches.log"
    return [int(x) for x in log.read_text().split()] if log.exists() else []
