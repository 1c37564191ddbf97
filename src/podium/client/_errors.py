"""Translate HTTP failures into the `podium.core.errors` tree, in one place.

- a response with an error status -> `error_from_response` (reads application/problem+json,
  falls back to any JSON `detail`/`error`/`message`, then to the body text);
- a transport failure (refused, timed out, reset) -> `Unavailable`, via `translate_transport`;
- a pydantic `ValidationError` (local input or an unexpected answer) -> `Invalid`/`PodiumError`.

`WaitTimeout` is the SDK's own: a wait (`wait_for`, `InferenceEndpoint.wait`) that ran out
of time. It is an `Unavailable` (the tree) and a `TimeoutError` (what huggingface_hub's
`InferenceEndpointTimeoutError` and `asyncio` callers catch).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
from pydantic import ValidationError

from podium.core.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    OutOfMemory,
    PodiumError,
    QuotaExceeded,
    RateLimited,
    Retryable,
    TooLarge,
    Unauthenticated,
    Unavailable,
)


class WaitTimeout(Unavailable, TimeoutError):
    """A wait for an endpoint's status ran out of time; the message says the last status."""

    title = "Timed out"


# Status (or status and problem title, where one status stands for several classes) ->
# the error class. The one place the SDK maps HTTP answers to errors.
_BY_STATUS: dict[int | tuple[int, str], type[PodiumError]] = {
    400: Invalid,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    409: Conflict,
    (409, QuotaExceeded.title): QuotaExceeded,
    413: TooLarge,
    422: Invalid,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
    507: OutOfMemory,  # a replica ran out of its memory limit serving the request
}


def error_from_response(response: httpx.Response) -> PodiumError:
    """The error that an unsuccessful response stands for (call only when it is one)."""
    body = _json_or_none(response)
    message, field = _message_and_field(body, response)
    status = response.status_code
    retry_after = _retry_after(response, body)
    if status == 429:
        wait = 1.0 if retry_after is None else retry_after
        return RateLimited(message, retry_after=wait, field=field)
    if status == 503 and retry_after is not None:
        return Retryable(message, retry_after=retry_after, field=field)
    title = body.get("title") if isinstance(body, dict) else None
    cls = _BY_STATUS.get((status, title)) if isinstance(title, str) else None
    cls = cls or _BY_STATUS.get(status, PodiumError)
    return cls(message, field=field)


def raise_for_status(response: httpx.Response) -> None:
    if response.is_error:
        raise error_from_response(response)


def invalid_from_validation(error: ValidationError) -> Invalid:
    """The first problem of a pydantic error, as `Invalid` naming the field (`a.b.c`)."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or None
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    else:
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = error.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return Invalid(message, field=field)


@contextmanager
def translate_transport(base_url: str) -> Iterator[None]:
    """Turn httpx transport failures into `Unavailable` with a hint at `podium up`."""
    try:
        yield
    except httpx.ConnectError as e:
        raise Unavailable(
            f"cannot reach Podium at {base_url}: {_reason(e)}; is `podium up` running?"
        ) from e
    except httpx.TimeoutException as e:
        raise Unavailable(f"Podium at {base_url} did not answer in time ({_reason(e)})") from e
    except httpx.TransportError as e:
        raise Unavailable(f"lost the connection to Podium at {base_url}: {_reason(e)}") from e


def _reason(e: Exception) -> str:
    return str(e) or type(e).__name__


def _json_or_none(response: httpx.Response) -> Any:
    try:
        response.read()
        return response.json()
    except (ValueError, httpx.StreamError):
        return None


def _message_and_field(body: Any, response: httpx.Response) -> tuple[str, str | None]:
    if isinstance(body, dict):
        field = body.get("field")
        field = str(field) if field else None
        detail = body.get("detail")
        if isinstance(detail, list) and detail:  # FastAPI's default validation error shape
            return _from_error_list(detail, field)
        if isinstance(detail, str) and detail:
            return detail, field
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return _from_error_list(errors, field)
        for key in ("error", "message", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value, field
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"], field
    text = ""
    with suppress(httpx.StreamError, UnicodeDecodeError):
        text = response.text.strip()
    status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return (f"{status}: {text[:500]}" if text else status), None


def _from_error_list(items: list[Any], field: str | None) -> tuple[str, str | None]:
    first = items[0]
    if not isinstance(first, dict):
        return str(first), field
    loc = first.get("loc") or first.get("field")
    if isinstance(loc, list | tuple):
        parts = [str(p) for p in loc if p not in ("body", "query", "path")]
        loc = ".".join(parts)
    message = str(first.get("msg") or first.get("message") or first.get("detail") or first)
    message = message.removeprefix("Value error, ")
    if len(items) > 1:
        message += f" (and {len(items) - 1} more problem{'s' if len(items) > 2 else ''})"
    return message, (field or (str(loc) if loc else None))


def _retry_after(response: httpx.Response, body: Any) -> float | None:
    raw: Any = response.headers.get("retry-after")
    if raw is None and isinstance(body, dict):
        raw = body.get("retry_after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        return None
