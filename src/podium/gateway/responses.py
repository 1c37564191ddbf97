"""Responses the gateway makes itself: `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    413: "Content Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem_body(status: int, detail: str, title: str | None = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    doc.update(extra)
    return json.dumps(doc).encode()


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    request_id: str | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    **extra: Any,
) -> None:
    """Send a whole problem response (head and body)."""
    body = problem_body(status, detail, title, **extra)
    raw = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if request_id:
        raw.append((b"x-request-id", request_id.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
