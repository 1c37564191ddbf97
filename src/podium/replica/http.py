"""Raw ASGI helpers for the replica: read a body, send an answer, render errors.

The replica answers three error shapes:
- `application/problem+json` {"type", "title", "status", "detail", "field"} on its own
  and Hugging Face style routes (text generation adds TGI's "error" and "error_type", so
  Hugging Face clients raise their typed errors);
- `{"error": "…"}` on Open Inference Protocol v2 routes, as that protocol defines;
- `{"error": {"message", "type", "param", "code"}}` on OpenAI routes.
Error classes map to status codes here (the replica cannot use the API's mapping, which
lives in a higher layer).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from podium.core.errors import (
    Conflict,
    Invalid,
    NotFound,
    OutOfMemory,
    PodiumError,
    Retryable,
    TooLarge,
    Unavailable,
)
from podium.protocols.openai import error_body as openai_error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
PROBLEM = b"application/problem+json"

_STATUS: tuple[tuple[type[PodiumError], int], ...] = (
    (Invalid, 400),
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (Unavailable, 503),
    (OutOfMemory, 507),
)
_TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Error"}


class ClientGone(Exception):
    """The client disconnected before its answer was ready; nothing is sent."""


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


async def read_body(receive: Receive) -> bytes:
    """The whole request body; ClientGone if the client disconnects first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client goes away (call only after the body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def status_of(error: PodiumError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def retry_headers(error: BaseException) -> list[tuple[bytes, bytes]]:
    if isinstance(error, Retryable):
        return [(b"retry-after", str(max(1, round(error.retry_after))).encode())]
    return []


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    field: str | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    doc = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "field": field,
    }
    return dumps(doc | extra if extra else doc)


def problem_of(error: PodiumError) -> tuple[int, bytes]:
    status = status_of(error)
    return status, problem(status, error.message, title=error.title, field=error.field)


class Responder:
    """Sends whole answers, each carrying the `x-podium-replica` header."""

    def __init__(self, replica_id: str) -> None:
        self._replica = replica_id.encode()

    async def send(
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: bytes = JSON,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        raw = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"x-podium-replica", self._replica),
        ]
        if headers:
            raw.extend(headers)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def json(self, send: Send, status: int, doc: Any) -> None:
        await self.send(send, status, dumps(doc))

    async def problem(self, send: Send, error: PodiumError) -> None:
        status, body = problem_of(error)
        await self.send(send, status, body, PROBLEM, retry_headers(error))

    async def generation_problem(self, send: Send, error: PodiumError) -> None:
        """A problem with TGI's {"error", "error_type"} for text generation requests."""
        status = status_of(error)
        kind = "validation" if status < 500 else "generation"
        if isinstance(error, Retryable):
            kind = "overloaded"
        body = problem(
            status,
            error.message,
            title=error.title,
            field=error.field,
            extra={"error": error.message, "error_type": kind},
        )
        await self.send(send, status, body, PROBLEM, retry_headers(error))

    async def v2_error(self, send: Send, error: PodiumError) -> None:
        body = dumps({"error": error.message})
        await self.send(send, status_of(error), body, JSON, retry_headers(error))

    async def openai_error(
        self, send: Send, error: PodiumError, rename: dict[str, str] | None = None
    ) -> None:
        """OpenAI's error body; `rename` maps a runtime's field to the request's param."""
        status = status_of(error)
        param = error.field
        if param is not None and rename:
            param = rename.get(param, param)
        code = "context_length_exceeded" if error.field == "prompt" and status == 400 else None
        body = dumps(openai_error_body(status, error.message, param=param, code=code))
        await self.send(send, status, body, JSON, retry_headers(error))
