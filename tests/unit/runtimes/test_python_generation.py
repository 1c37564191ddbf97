"""The python runtime's optional methods: generate, chat_prompt, embed, tensors, streams."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from podium.core.errors import Invalid, LoadError
from podium.runtimes.base import GenerationChunk, GenerationRequest, RuntimeConfig
from podium.runtimes.python import PythonRuntime

PIECES = """
class Model:
    def load(self, path):
        self.seen = []

    def context_length(self):
        return 10

    def generate(self, request, cancelled):
        self.seen.append(request)
        yield from PIECES
"""


def loaded(tmp_path: Path, source: str) -> PythonRuntime:
    (tmp_path / "model.py").write_text(source)
    runtime = PythonRuntime(RuntimeConfig(model_name="m"))
    runtime.load(tmp_path)
    return runtime


def generate(runtime: PythonRuntime, prompt: str = "p", **kw: object) -> list[GenerationChunk]:
    request = GenerationRequest(prompt=prompt, **kw)  # type: ignore[arg-type]
    return list(runtime.generate(request, threading.Event()))


def lm(tmp_path: Path, pieces: list[object]) -> PythonRuntime:
    return loaded(tmp_path, f"PIECES = {pieces!r}\n" + PIECES)


def test_capabilities_follow_the_methods(tmp_path: Path) -> None:
    runtime = lm(tmp_path, ["a"])
    caps = runtime.capabilities
    assert (caps.generative, caps.chat, caps.embeddings, caps.tensor) == (True, False, False, False)
    with pytest.raises(Invalid, match="no chat template") as caught:
        runtime.chat_prompt([{"role": "user", "content": "x"}])
    assert caught.value.field == "messages"
    with pytest.raises(Invalid, match="does not answer predictions"):
        runtime.predict("x", {})


def test_text_pieces_become_chunks_with_a_last_one(tmp_path: Path) -> None:
    chunks = generate(lm(tmp_path, ["a", " b"]), "one two")
    assert [(c.text, c.completion_tokens, c.finish_reason) for c in chunks] == [
        ("a", 1, None),
        (" b", 2, None),
        ("", 2, "stop"),
    ]
    assert {c.prompt_tokens for c in chunks} == {2}


def test_max_tokens_and_the_context_limit(tmp_path: Path) -> None:
    runtime = lm(tmp_path, ["x"] * 20)
    short = generate(runtime, max_tokens=3)
    assert "".join(c.text for c in short) == "xxx"
    assert short[-1].finish_reason == "length"
    # No max_tokens: the context (10) minus the prompt (4 words) leaves room for 6.
    clamped = generate(runtime, "a b c d")
    assert (clamped[-1].completion_tokens, clamped[-1].finish_reason) == (6, "length")
    with pytest.raises(Invalid, match="the prompt is 10 tokens; this model's context length is 10"):
        generate(runtime, " ".join(["w"] * 10))


def test_stop_sequences_hold_back_text_that_may_start_one(tmp_path: Path) -> None:
    runtime = lm(tmp_path, ["Hel", "lo E", "N", "D more"])
    chunks = generate(runtime, stop=("END",))
    assert [c.text for c in chunks] == ["Hel", "lo ", ""]  # "E", "EN" held back
    assert "".join(c.text for c in chunks) == "Hello "
    assert chunks[-1].finish_reason == "stop"
    false_alarm = generate(lm(tmp_path, ["a E", "Nx", "!"]), stop=("END",))
    assert "".join(c.text for c in false_alarm) == "a ENx!"


def test_generation_chunks_pass_through(tmp_path: Path) -> None:
    source = "from podium.runtimes.base import GenerationChunk as C\n" + PIECES.replace(
        "yield from PIECES", "yield C('a', 7, 1)\n        yield C('b', 7, 2, 'length')"
    ).replace("PIECES = ", "")
    chunks = generate(loaded(tmp_path, source), max_tokens=1)
    assert chunks == [GenerationChunk("a", 7, 1), GenerationChunk("b", 7, 2, "length")]


def test_a_cancelled_generation_stops_and_closes_the_users_generator(tmp_path: Path) -> None:
    runtime = loaded(
        tmp_path,
        PIECES.replace(
            "yield from PIECES",
            "try:\n            while True:\n                yield 'x'\n"
            "        finally:\n            self.closed = cancelled.is_set()",
        ),
    )
    cancelled = threading.Event()
    chunks = runtime.generate(GenerationRequest(prompt="p", max_tokens=None), cancelled)
    got = [next(chunks), next(chunks)]
    cancelled.set()
    rest = list(chunks)
    assert len(got) + len(rest) <= 3
    assert runtime.model.closed is True


def test_embeddings_and_predict_fallback(tmp_path: Path) -> None:
    runtime = loaded(
        tmp_path,
        "class Model:\n    def load(self, path): pass\n"
        "    def embed(self, texts): return [[len(t), 0.0] for t in texts]\n",
    )
    assert runtime.capabilities.embeddings
    out = runtime.embed(["ab", "c d e"])
    assert (out.vectors, out.prompt_tokens) == ([[2.0, 0.0], [5.0, 0.0]], 4)
    assert runtime.predict("abc", {}) == [3.0, 0.0]
    assert runtime.predict(["a", "bb"], {}) == [[1.0, 0.0], [2.0, 0.0]]


def test_tensors(tmp_path: Path) -> None:
    runtime = loaded(
        tmp_path,
        "class Model:\n    def load(self, path): pass\n"
        "    def v2_metadata(self):\n"
        "        return {'inputs': [{'name': 'x', 'datatype': 'FP32', 'shape': [-1]}],\n"
        "                'outputs': [{'name': 'y', 'datatype': 'FP32', 'shape': [-1]}]}\n"
        "    def infer(self, inputs, parameters, outputs=None):\n"
        "        return {'y': inputs['x'] + 1, 'asked': [str(outputs)]}\n",
    )
    assert runtime.capabilities.tensor
    meta = runtime.v2_metadata()
    assert (meta.name, meta.platform, meta.inputs[0].shape) == ("m", "python", (-1,))
    out = runtime.infer({"x": np.array([1.0], np.float32)}, {}, frozenset({"y"}))
    assert out["y"].tolist() == [2.0]
    assert out["asked"].tolist() == ["frozenset({'y'})"]


def test_bad_tensor_metadata_fails_the_load(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="v2_metadata\\(\\) must return"):
        loaded(
            tmp_path,
            "class Model:\n    def load(self, path): pass\n"
            "    def v2_metadata(self): return {'inputs': []}\n"
            "    def infer(self, inputs, parameters): return {}\n",
        )


def test_predict_stream(tmp_path: Path) -> None:
    runtime = loaded(
        tmp_path,
        "class Model:\n    def load(self, path): pass\n"
        "    def predict(self, inputs, parameters): return inputs\n"
        "    def predict_stream(self, inputs, parameters):\n"
        "        yield from inputs\n",
    )
    assert runtime.capabilities.streaming
    assert list(runtime.predict_stream([1, 2], {})) == [1, 2]


def test_a_class_needs_something_to_serve(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="has no predict method"):
        loaded(tmp_path, "class Model:\n    def load(self, path): pass\n")
