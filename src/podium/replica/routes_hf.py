"""`POST /`: the Hugging Face style route of every runtime.

- Generative runtimes answer text generation as TGI does, streamed (`"stream": true`,
  server-sent events) or whole.
- Runtimes with `predict_stream` stream partial results when asked (`data: <json>`).
- Everything else is `predict`; with dynamic batching configured and a runtime that
  batches, concurrent requests go through the `Batcher` into `predict_batch`.

Without batching or streaming, the body is decoded, predicted and encoded in one worker
thread, so the event loop only moves bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from podium.core.errors import Invalid
from podium.protocols import hf
from podium.replica.batching import Batcher
from podium.replica.context import Serving
from podium.replica.http import Receive, Send, read_body
from podium.replica.streaming import WorkerStream, collect, serve_events
from podium.runtimes.base import GenerationChunk, GenerationRequest


class HfRoute:
    def __init__(self, serving: Serving, batcher: Batcher | None = None) -> None:
        self.s = serving
        self.batcher = batcher
        caps = serving.runtime.capabilities
        self.generative = caps.generative
        self.streaming = caps.streaming
        self.plain = not (caps.generative or caps.streaming or batcher is not None)

    async def __call__(self, receive: Receive, send: Send) -> None:
        render = self.s.http.generation_problem if self.generative else self.s.http.problem
        await self.s.handle("hf", send, lambda: self._answer(receive, send), render)

    async def _answer(self, receive: Receive, send: Send) -> int:
        body = await read_body(receive)
        s = self.s
        if self.plain:
            async with s.slot(receive):
                payload = await s.call(self._predict_work, body)
            await s.http.send(send, 200, payload)
            return 200
        request = hf.decode_request(body)
        if self.generative:
            return await self._generate(hf.decode_generate(request), receive, send)
        if request.stream:
            if not self.streaming:
                raise Invalid(f"the {s.info.runtime} runtime does not stream", field="stream")
            return await self._predict_stream(request, receive, send)
        async with s.slot(receive):
            if self.batcher is not None:
                output = await self.batcher.submit(request.inputs, request.parameters)
            else:
                output = await s.call(s.runtime.predict, request.inputs, request.parameters)
        await s.http.send(send, 200, hf.encode_response(output))
        return 200

    def _predict_work(self, body: bytes) -> bytes:
        request = hf.decode_request(body)
        if request.stream:
            raise Invalid(f"the {self.s.info.runtime} runtime does not stream", field="stream")
        return hf.encode_response(self.s.runtime.predict(request.inputs, request.parameters))

    # ------------------------------------------------------------------ streams

    async def _predict_stream(self, request: hf.HfRequest, receive: Receive, send: Send) -> int:
        s = self.s
        cancelled = threading.Event()

        def produce() -> Iterator[Any]:
            return s.runtime.predict_stream(request.inputs, request.parameters)

        async with s.slot(receive):
            stream = WorkerStream(s.pool, produce, cancelled)
            return await serve_events(
                stream, _PartialEvents(), receive, send, self.s.stream_headers()
            )

    async def _generate(self, request: hf.GenerateRequest, receive: Receive, send: Send) -> int:
        s = self.s
        p = request.params
        async with s.slot(receive):
            if request.stream:
                prompt = request.prompts[0]
                stream = self._generation(prompt, p)
                events = _TgiEvents(hf.GenerateStream(prompt, p))
                return await serve_events(stream, events, receive, send, self.s.stream_headers())
            answers = []
            for prompt in request.prompts:
                chunks: list[GenerationChunk] = await collect(self._generation(prompt, p), receive)
                last = chunks[-1] if chunks else GenerationChunk("", 0, 0, "stop")
                answers.append(
                    hf.generated(
                        prompt,
                        [c.text for c in chunks if c.text],
                        last.finish_reason,
                        p,
                        prompt_tokens=last.prompt_tokens,
                        completion_tokens=last.completion_tokens,
                    )
                )
        await s.http.send(send, 200, hf.to_json_bytes(answers))
        return 200

    def _generation(self, prompt: str, p: hf.GenerateParams) -> WorkerStream:
        runtime = self.s.runtime
        cancelled = threading.Event()
        request = GenerationRequest(
            prompt=prompt,
            max_tokens=p.max_new_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            stop=p.stop,
            seed=p.seed,
        )
        return WorkerStream(self.s.pool, lambda: runtime.generate(request, cancelled), cancelled)


class _TgiEvents:
    def __init__(self, encoder: hf.GenerateStream) -> None:
        self.encoder = encoder

    def begin(self) -> list[bytes]:
        return []

    def item(self, c: GenerationChunk) -> list[bytes]:
        docs = self.encoder.piece(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens)
        return [hf.sse(d) for d in docs]

    def end(self) -> list[bytes]:
        return []

    def failure(self, error: Exception) -> list[bytes]:
        return [hf.sse(hf.error_event(_message(error)))]


class _PartialEvents:
    def begin(self) -> list[bytes]:
        return []

    def item(self, partial: Any) -> list[bytes]:
        return [hf.sse(partial)]

    def end(self) -> list[bytes]:
        return []

    def failure(self, error: Exception) -> list[bytes]:
        return [hf.sse({"error": _message(error)})]


def _message(error: Exception) -> str:
    return str(error) or type(error).__name__
