"""OpenAI-compatible routes, mounted by the runtime's capabilities.

    POST /v1/chat/completions   generative (the model's chat template renders `messages`)
    POST /v1/completions        generative
    POST /v1/embeddings         embeddings
    GET  /v1/models             either: one model, the endpoint's name

Streams (`stream: true`) are server-sent events of `chat.completion.chunk` /
`text_completion` objects ending with `data: [DONE]`. Every error, including unknown
routes under /v1, is OpenAI's {"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator

from podium import __version__
from podium.core.errors import NotFound, PodiumError
from podium.protocols import openai
from podium.replica.context import Serving
from podium.replica.http import Receive, Send, dumps, read_body
from podium.replica.streaming import WorkerStream, collect, serve_events
from podium.runtimes.base import GenerationChunk, GenerationRequest

PREFIX = "/v1/"
CHAT = {"prompt": "messages"}


class OpenAIRoutes:
    def __init__(self, serving: Serving) -> None:
        self.s = serving
        caps = serving.runtime.capabilities
        self.model = serving.info.endpoint
        self.created = int(time.time())
        self.fingerprint = f"podium-{__version__}-r{serving.info.revision}"
        routes: dict[str, tuple[str, Callable[[Receive, Send], Awaitable[int]]]] = {}
        if caps.generative:
            routes["/v1/chat/completions"] = ("POST", self._chat)
            routes["/v1/completions"] = ("POST", self._completions)
        if caps.embeddings:
            routes["/v1/embeddings"] = ("POST", self._embeddings)
        if routes:
            routes["/v1/models"] = ("GET", self._models)
        self.routes = routes

    async def __call__(self, method: str, path: str, receive: Receive, send: Send) -> None:
        route = self.routes.get(path.rstrip("/"))
        if route is None and self.routes and path.startswith("/v1/models/"):
            await self._model(method, path[len("/v1/models/") :], send)
            return
        if route is None:
            await self._error(send, NotFound(self._no_route(path)))
            return
        want, handler = route
        if method != want and not (want == "GET" and method == "HEAD"):
            doc = openai.error_body(405, f"use {want} for {path}")
            await self.s.http.send(send, 405, dumps(doc), headers=[(b"allow", want.encode())])
            return
        if want == "GET":
            await handler(receive, send)
            return
        rename = CHAT if path.startswith("/v1/chat") else None

        async def render(send: Send, error: PodiumError) -> int:
            return await self.s.http.openai_error(send, error, rename)

        await self.s.handle("openai", send, lambda: handler(receive, send), render)

    def _no_route(self, path: str) -> str:
        if not self.routes:
            return f"the {self.s.info.runtime} runtime does not serve the OpenAI API"
        served = ", ".join(sorted(self.routes))
        return f"no route {path}; this endpoint serves {served}"

    async def _error(self, send: Send, error: PodiumError) -> None:
        await self.s.http.openai_error(send, error)

    # ------------------------------------------------------------------ routes

    async def _models(self, receive: Receive, send: Send) -> int:
        await self.s.http.json(send, 200, openai.model_list(self.model, created=self.created))
        return 200

    async def _model(self, method: str, model: str, send: Send) -> None:
        """`GET /v1/models/{model}` (`client.models.retrieve`)."""
        if method not in ("GET", "HEAD"):
            doc = openai.error_body(405, "use GET")
            await self.s.http.send(send, 405, dumps(doc), headers=[(b"allow", b"GET")])
        elif model != self.model:
            doc = openai.error_body(
                404,
                f"model {model!r} not found; this endpoint serves {self.model!r}",
                param="model",
                code="model_not_found",
            )
            await self.s.http.send(send, 404, dumps(doc))
        else:
            [doc] = openai.model_list(self.model, created=self.created)["data"]
            await self.s.http.json(send, 200, doc)

    async def _chat(self, receive: Receive, send: Send) -> int:
        request = openai.decode_chat_request(await read_body(receive))
        runtime = self.s.runtime
        cancelled = threading.Event()
        sampling = request.sampling

        def produce() -> Iterator[GenerationChunk]:
            prompt = runtime.chat_prompt(request.messages)
            return runtime.generate(_generation(prompt, sampling), cancelled)

        ident, created = openai.new_id("chatcmpl"), int(time.time())
        async with self.s.slot(receive):
            stream = WorkerStream(self.s.pool, produce, cancelled)
            if request.stream:
                encoder = openai.ChatStream(
                    id=ident,
                    model=self.model,
                    created=created,
                    fingerprint=self.fingerprint,
                    include_usage=request.include_usage,
                )
                return await serve_events(
                    stream, _ChatEvents(encoder), receive, send, self.s.stream_headers()
                )
            choice = _choice(await collect(stream, receive))
        doc = openai.chat_completion(
            choice, id=ident, model=self.model, created=created, fingerprint=self.fingerprint
        )
        await self.s.http.json(send, 200, doc)
        return 200

    async def _completions(self, receive: Receive, send: Send) -> int:
        request = openai.decode_completion_request(await read_body(receive))
        runtime = self.s.runtime
        cancelled = threading.Event()
        sampling = request.sampling

        def produce() -> Iterator[tuple[int, GenerationChunk]]:
            for i, prompt in enumerate(request.prompts):
                if cancelled.is_set():
                    return
                for chunk in runtime.generate(_generation(prompt, sampling), cancelled):
                    yield i, chunk

        ident, created = openai.new_id("cmpl"), int(time.time())
        async with self.s.slot(receive):
            stream = WorkerStream(self.s.pool, produce, cancelled)
            if request.stream:
                encoder = openai.CompletionStream(
                    id=ident,
                    model=self.model,
                    created=created,
                    fingerprint=self.fingerprint,
                    include_usage=request.include_usage,
                )
                echo = request.prompts if request.echo else None
                events = _CompletionEvents(encoder, echo)
                return await serve_events(stream, events, receive, send, self.s.stream_headers())
            items: list[tuple[int, GenerationChunk]] = await collect(stream, receive)
        choices = []
        for i, prompt in enumerate(request.prompts):
            choice = _choice([c for j, c in items if j == i])
            if request.echo:
                choice = openai.Choice(
                    prompt + choice.text,
                    choice.finish_reason,
                    choice.prompt_tokens,
                    choice.completion_tokens,
                )
            choices.append(choice)
        doc = openai.completion(
            choices, id=ident, model=self.model, created=created, fingerprint=self.fingerprint
        )
        await self.s.http.json(send, 200, doc)
        return 200

    async def _embeddings(self, receive: Receive, send: Send) -> int:
        request = openai.decode_embedding_request(await read_body(receive))
        runtime = self.s.runtime

        def work() -> bytes:
            result = runtime.embed(request.texts)
            if len(result.vectors) != len(request.texts):
                raise RuntimeError(
                    f"embed returned {len(result.vectors)} vectors for {len(request.texts)} texts"
                )
            doc = openai.embeddings(
                result.vectors,
                model=self.model,
                prompt_tokens=result.prompt_tokens,
                encoding_format=request.encoding_format,
            )
            return dumps(doc)

        async with self.s.slot(receive):
            payload = await self.s.call(work)
        await self.s.http.send(send, 200, payload)
        return 200


def _generation(prompt: str, sampling: openai.Sampling) -> GenerationRequest:
    return GenerationRequest(
        prompt=prompt,
        max_tokens=sampling.max_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        stop=sampling.stop,
        seed=sampling.seed,
    )


def _choice(chunks: list[GenerationChunk]) -> openai.Choice:
    if not chunks:
        return openai.Choice("", "stop", 0, 0)
    last = chunks[-1]
    text = "".join(c.text for c in chunks)
    return openai.Choice(text, last.finish_reason, last.prompt_tokens, last.completion_tokens)


def _failure(error: Exception) -> list[bytes]:
    if isinstance(error, PodiumError):
        status = openai.error_status(error.status)
        doc = openai.error_body(status, error.message, param=error.field)
    else:
        doc = openai.error_body(500, f"generation failed: {type(error).__name__}: {error}")
    return [openai.sse(doc)]


class _ChatEvents:
    def __init__(self, encoder: openai.ChatStream) -> None:
        self.encoder = encoder

    def begin(self) -> list[bytes]:
        return [openai.sse(d) for d in self.encoder.begin()]

    def item(self, c: GenerationChunk) -> list[bytes]:
        docs = self.encoder.piece(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens)
        return [openai.sse(d) for d in docs]

    def end(self) -> list[bytes]:
        return [*(openai.sse(d) for d in self.encoder.end()), openai.DONE]

    def failure(self, error: Exception) -> list[bytes]:
        return _failure(error)


class _CompletionEvents:
    def __init__(self, encoder: openai.CompletionStream, echo: list[str] | None) -> None:
        self.encoder = encoder
        self.echo = echo
        self.started: set[int] = set()

    def begin(self) -> list[bytes]:
        return []

    def item(self, item: tuple[int, GenerationChunk]) -> list[bytes]:
        i, c = item
        text = c.text
        if self.echo is not None and i not in self.started:
            text = self.echo[i] + text
        self.started.add(i)
        docs = self.encoder.piece(i, text, c.finish_reason, c.prompt_tokens, c.completion_tokens)
        return [openai.sse(d) for d in docs]

    def end(self) -> list[bytes]:
        return [*(openai.sse(d) for d in self.encoder.end()), openai.DONE]

    def failure(self, error: Exception) -> list[bytes]:
        return _failure(error)
