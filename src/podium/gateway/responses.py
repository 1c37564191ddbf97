"""Errors the gateway makes itself, in the shape the request's surface speaks.

`send_problem` sends `application/problem+json` (`core/problems.py`, RFC 9457) for
`/endpoints/…`; for a request the OpenAI router took, whose `send` it wrapped in
`OpenAIErrors`, the same call builds OpenAI's `{"error": {"message", "type", "param",
"code"}}` directly (same status and headers; `code` is the title in snake case). Answers
forwarded from a replica are never rewritten. A 429/503 made here is a refusal before any
work (rate limits, the activator's hold and queue limits, a paused or failed endpoint, a
busy task store, shutting down), so it carries `x-podium-refused: gateway`: the SDK sends
such a request again (`client/_retry.py`). The ASGI types are the shared kit's
(`core/asgi.py`).
"""

from __future__ import annotations

import re
from typing import Any

from podium.core.asgi import Message, Receive, Scope, Send, send_whole
from podium.core.problems import (
    PROBLEM,
    REFUSED_BY_GATEWAY,
    SAFE_HEADERS,
    dumps,
    problem_doc,
    title_for,
)
from podium.protocols.openai import error_body as openai_error_body

__all__ = [
    "Message",
    "OpenAIErrors",
    "Receive",
    "Scope",
    "Send",
    "openai_error",
    "problem_body",
    "send_problem",
]

JSON = b"application/json"
REFUSALS = (429, 503)  # the statuses the gateway answers only before forwarding anything


class OpenAIErrors:
    """The `send` of a request routed by the OpenAI router: messages pass straight on, and
    `send_problem` answers in OpenAI's shape when handed one."""

    __slots__ = ("send",)

    def __init__(self, send: Send) -> None:
        self.send = send

    async def __call__(self, message: Message) -> None:
        await self.send(message)


def problem_body(status: int, detail: str, title: str | None = None, **extra: Any) -> bytes:
    return dumps(problem_doc(status, detail, title=title, **extra))


def openai_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
) -> bytes:
    return dumps(openai_error_body(status, message, param=param, code=code))


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    request_id: str | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    openai_code: str | None = None,
    **extra: Any,
) -> None:
    """Send a whole error response (head and body): a problem, or OpenAI's error body when
    `send` is an `OpenAIErrors` (its `code` is `openai_code`, else the title in snake case)."""
    raw = [*headers, *SAFE_HEADERS]
    if status in REFUSALS:
        raw.append(REFUSED_BY_GATEWAY)
    if request_id:
        raw.append((b"x-request-id", request_id.encode("latin-1")))
    if isinstance(send, OpenAIErrors):
        code = openai_code
        if code is None:
            code = re.sub(r"[^a-z0-9]+", "_", (title or title_for(status)).lower()).strip("_")
        body = openai_error(status, detail, code=code or None)
        await send_whole(send.send, status, JSON, body, raw)
        return
    await send_whole(send, status, PROBLEM, problem_body(status, detail, title, **extra), raw)
