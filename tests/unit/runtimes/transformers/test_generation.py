"""text-generation: streaming, token counts, cancellation, stops, seeds, chat, context."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from podium.core.errors import Invalid
from podium.runtimes.base import GenerationChunk, GenerationRequest
from podium.runtimes.transformers import TransformersRuntime
from podium.runtimes.transformers.streaming import QUEUE_SIZE, held_back

from .conftest import load

CONTEXT = 128  # build_tiny_gpt2's n_positions


def run(runtime: TransformersRuntime, request: GenerationRequest) -> list[GenerationChunk]:
    return list(runtime.generate(request, threading.Event()))


def text_of(chunks: list[GenerationChunk]) -> str:
    return "".join(c.text for c in chunks)


def greedy(prompt: str = "Hello there", max_tokens: int = 20) -> GenerationRequest:
    return GenerationRequest(prompt, max_tokens=max_tokens, temperature=0.0)


def test_streams_chunks_and_counts_tokens(gpt2: TransformersRuntime) -> None:
    chunks = run(gpt2, greedy(max_tokens=20))
    assert len(chunks) > 5
    *body, last = chunks
    assert all(c.finish_reason is None and c.text for c in body)
    assert last.finish_reason == "length"
    assert last.completion_tokens == 20
    counts = [c.completion_tokens for c in chunks]
    assert counts == sorted(counts)
    tokenizer = gpt2.handler.tokenizer  # type: ignore[attr-defined]
    assert {c.prompt_tokens for c in chunks} == {len(tokenizer("Hello there")["input_ids"])}
    assert len(tokenizer(text_of(chunks))["input_ids"]) == pytest.approx(20, abs=3)


def test_greedy_is_deterministic(gpt2: TransformersRuntime) -> None:
    assert text_of(run(gpt2, greedy())) == text_of(run(gpt2, greedy()))


def test_cancelling_stops_generation_early(gpt2: TransformersRuntime) -> None:
    cancelled = threading.Event()
    chunks = []
    for chunk in gpt2.generate(greedy(max_tokens=100), cancelled):
        chunks.append(chunk)
        cancelled.set()  # the client went away after the first chunk
    assert len(chunks) == 2  # the first chunk, then the closing one
    assert chunks[-1].finish_reason == "stop"
    # The producer runs at most a queue's length ahead of the consumer.
    assert chunks[-1].completion_tokens <= QUEUE_SIZE + 3 < 100


def test_abandoned_stream_frees_the_model(gpt2: TransformersRuntime) -> None:
    stream = gpt2.generate(greedy(max_tokens=100), threading.Event())
    next(iter(stream))
    stream.close()  # type: ignore[attr-defined]
    assert run(gpt2, greedy(max_tokens=3))[-1].completion_tokens == 3


def test_concurrent_generations_are_serialised(gpt2: TransformersRuntime) -> None:
    expected = text_of(run(gpt2, greedy()))
    results: list[str] = []

    def worker() -> None:
        results.append(text_of(run(gpt2, greedy())))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 3


def test_stop_strings_end_the_text(gpt2: TransformersRuntime) -> None:
    full = text_of(run(gpt2, greedy(max_tokens=30)))
    stop = full[7:10]
    cut = full.index(stop)
    request = GenerationRequest("Hello there", max_tokens=30, temperature=0.0, stop=(stop,))
    chunks = run(gpt2, request)
    assert text_of(chunks) == full[:cut]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].completion_tokens < 30


def test_held_back_tail_might_start_a_stop_string() -> None:
    assert held_back("hello wor", ("world",)) == 3
    assert held_back("hello", ("xyz", "lo!")) == 2
    assert held_back("hello", ("abc",)) == 0


def test_seed_makes_sampling_reproducible(gpt2: TransformersRuntime) -> None:
    def sample(seed: int) -> str:
        request = GenerationRequest("Hello", max_tokens=15, temperature=1.0, seed=seed)
        return text_of(run(gpt2, request))

    assert sample(42) == sample(42)
    assert sample(42) != sample(43)


def test_prompt_longer_than_the_context(gpt2: TransformersRuntime) -> None:
    with pytest.raises(Invalid) as caught:
        gpt2.generate(GenerationRequest("hello " * 200), threading.Event())
    assert caught.value.field == "prompt"
    assert str(caught.value).endswith(f"tokens; this model's context is {CONTEXT} tokens")
    assert str(caught.value).startswith("prompt has ")
    assert gpt2.context_length() == CONTEXT


def test_max_tokens_is_clamped_to_the_room_left(gpt2: TransformersRuntime) -> None:
    prompt = "hello " * 50
    chunks = run(gpt2, GenerationRequest(prompt, max_tokens=500, temperature=0.0))
    prompt_tokens = chunks[-1].prompt_tokens
    assert prompt_tokens + chunks[-1].completion_tokens == CONTEXT
    assert chunks[-1].finish_reason == "length"


def test_chat_prompt_uses_the_template(gpt2: TransformersRuntime) -> None:
    assert gpt2.capabilities.chat
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert gpt2.chat_prompt(messages) == "system: be brief\nuser: hi\nassistant:"
    with pytest.raises(Invalid) as caught:
        gpt2.chat_prompt([{"content": "no role"}])
    assert caught.value.field == "messages"


def test_no_chat_template(gpt2_plain_path: Path) -> None:
    runtime = load(gpt2_plain_path)
    assert runtime.capabilities.generative and not runtime.capabilities.chat
    with pytest.raises(Invalid, match="no chat template") as caught:
        runtime.chat_prompt([{"role": "user", "content": "hi"}])
    assert caught.value.field == "messages"


# ---------------------------------------------------------------------- Hugging Face style


def test_hf_predict(gpt2: TransformersRuntime) -> None:
    expected = text_of(run(gpt2, greedy(max_tokens=8)))
    out = gpt2.predict("Hello there", {"max_new_tokens": 8})
    assert out == [{"generated_text": "Hello there" + expected}]
    short = gpt2.predict("Hello there", {"max_new_tokens": 8, "return_full_text": False})
    assert short == [{"generated_text": expected}]


def test_hf_predict_stream_yields_deltas(gpt2: TransformersRuntime) -> None:
    deltas = list(gpt2.predict_stream("Hello there", {"max_new_tokens": 8}))
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == text_of(run(gpt2, greedy(max_tokens=8)))


def test_hf_sampling_parameters(gpt2: TransformersRuntime) -> None:
    params = {"max_new_tokens": 10, "do_sample": True, "seed": 7, "top_p": 0.9}
    assert gpt2.predict("Hi", params) == gpt2.predict("Hi", params)
    with pytest.raises(Invalid) as caught:
        gpt2.predict("Hi", {"temperature": "hot"})
    assert caught.value.field == "parameters.temperature"
    with pytest.raises(Invalid) as caught:
        gpt2.predict(["Hi"], {})
    assert caught.value.field == "inputs"
