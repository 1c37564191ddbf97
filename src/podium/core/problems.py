"""The one `application/problem+json` builder (RFC 9457) for the API, the gateway and the replica.

    {"type": "about:blank", "title", "status", "detail", "field"?, …extensions}

An error's status and title are its class's (`core/errors.py`), so one error answers alike
on every surface. `field` is present only when an input is to blame. A surface may add its
own extension members (the API's `errors` list, the gateway's `endpoint` and `replica`).
Pure: builds documents and bytes, sends nothing.
"""

from __future__ import annotations

import json
import math
from http import HTTPStatus
from typing import Any

from podium.core.errors import PodiumError, RateLimited, Retryable

PROBLEM_JSON = "application/problem+json"
PROBLEM = PROBLEM_JSON.encode()

# On every answer Podium makes itself (problems from the API, the gateway and the server;
# `/metrics`), never on a replica's answer, which the gateway passes on as it came: a
# problem is never sniffed into a script, framed, or allowed to load anything.
SAFE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)

# On a 429/503 Podium made before doing any of the request's work, and only there: the
# gateway's own refusals (`gateway/responses.py`) and a replica's full queue
# (`replica/concurrency.py`). A relayed POST is sent again only when it carries this header
# (`client/_retry.py`); a `PodiumError` raised by a model's own code never does.
REFUSED_HEADER = "x-podium-refused"
REFUSED_BY_GATEWAY = (REFUSED_HEADER.encode(), b"gateway")
REFUSED_BY_REPLICA = (REFUSED_HEADER.encode(), b"replica")

# Titles for answers no error class makes (fixed here, not HTTPStatus's: its phrases
# change between Python versions).
_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def title_for(status: int) -> str:
    """The title of an answer that names no error class."""
    title = _TITLES.get(status)
    if title is not None:
        return title
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_doc(
    status: int, detail: str, *, title: str | None = None, field: str | None = None, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "about:blank",
        "title": title or title_for(status),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        doc["field"] = field
    if extra:
        doc.update(extra)
    return doc


def dumps(doc: Any) -> bytes:
    """JSON as every surface writes it: UTF-8, compact."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def problem_body(
    status: int, detail: str, *, title: str | None = None, field: str | None = None, **extra: Any
) -> bytes:
    return dumps(problem_doc(status, detail, title=title, field=field, **extra))


def error_doc(error: PodiumError, /, **extra: Any) -> dict[str, Any]:
    """The problem document of `error`: its class's status and title, its message and field."""
    return problem_doc(error.status, error.message, title=error.title, field=error.field, **extra)


def retry_after(error: BaseException) -> str | None:
    """The Retry-After value (whole seconds, rounded up, at least 1) of a Retryable or a
    RateLimited error."""
    if isinstance(error, Retryable | RateLimited):
        return str(max(1, math.ceil(error.retry_after)))
    return None
