"""The replica's answers over raw ASGI: whole answers, and errors in each protocol's shape.

The ASGI types and helpers (`Receive`, `Send`, `ClientGone`, `read_body`,
`wait_disconnect`) are the shared kit's (`core/asgi.py`), named here for the routes.
The replica answers three error shapes, each with the error class's status
(`core/errors.py`):
- `application/problem+json` {"type", "title", "status", "detail", "field"?}
  (`core/problems.py`) on its own and Hugging Face style routes (text generation adds
  TGI's "error" and "error_type", so Hugging Face clients raise their typed errors);
- `{"error": "…"}` on Open Inference Protocol v2 routes, as that protocol defines;
- `{"error": {"message", "type", "param", "code"}}` on OpenAI routes, whose status follows
  OpenAI's (input that is wrong is 400 there: `protocols/openai.error_status`).
Each error renderer returns the status it sent. Only the limiter's refusal (`Busy`) adds
`x-podium-refused: replica` (`retry_headers`).
"""

from __future__ import annotations

from typing import Any

from podium.core.asgi import (
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    read_body,
    wait_disconnect,
)
from podium.core.errors import PodiumError, Retryable
from podium.core.problems import (
    PROBLEM,
    REFUSED_BY_REPLICA,
    dumps,
    error_doc,
    problem_body,
    retry_after,
)
from podium.protocols.openai import error_body as openai_error_body
from podium.protocols.openai import error_status as openai_error_status
from podium.replica.concurrency import Busy

__all__ = [
    "JSON",
    "PROBLEM",
    "ClientGone",
    "Message",
    "Receive",
    "Responder",
    "Scope",
    "Send",
    "dumps",
    "problem",
    "read_body",
    "retry_headers",
    "wait_disconnect",
]

JSON = b"application/json"


def retry_headers(error: BaseException) -> list[tuple[bytes, bytes]]:
    """Retry-After when the error has one; `x-podium-refused` only on the limiter's refusal
    (`Busy`), never on an error a model's code raised."""
    wait = retry_after(error)
    headers = [(b"retry-after", wait.encode())] if wait is not None else []
    if isinstance(error, Busy):
        headers.append(REFUSED_BY_REPLICA)
    return headers


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    field: str | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    return problem_body(status, detail, title=title, field=field, **(extra or {}))


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

    async def problem(self, send: Send, error: PodiumError) -> int:
        await self.send(send, error.status, dumps(error_doc(error)), PROBLEM, retry_headers(error))
        return error.status

    async def generation_problem(self, send: Send, error: PodiumError) -> int:
        """A problem with TGI's {"error", "error_type"} for text generation requests."""
        status = error.status
        kind = "validation" if status < 500 else "generation"
        if isinstance(error, Retryable):
            kind = "overloaded"
        body = dumps(error_doc(error, error=error.message, error_type=kind))
        await self.send(send, status, body, PROBLEM, retry_headers(error))
        return status

    async def v2_error(self, send: Send, error: PodiumError) -> int:
        body = dumps({"error": error.message})
        await self.send(send, error.status, body, JSON, retry_headers(error))
        return error.status

    async def openai_error(
        self, send: Send, error: PodiumError, rename: dict[str, str] | None = None
    ) -> int:
        """OpenAI's error body; `rename` maps a runtime's field to the request's param."""
        status = openai_error_status(error.status)
        param = error.field
        if param is not None and rename:
            param = rename.get(param, param)
        code = "context_length_exceeded" if error.field == "prompt" and status == 400 else None
        body = dumps(openai_error_body(status, error.message, param=param, code=code))
        await self.send(send, status, body, JSON, retry_headers(error))
        return status
