"""The control API's errors as `application/problem+json` (RFC 9457), built by `core/problems`.

    a PodiumError: its class's status and title (`core/errors.py`; Retryable adds
    Retry-After) · request validation 422 (as `Invalid`) · routing errors (unknown route
    404, wrong method 405) · anything else 500, answered by `ServerErrorGuard` (outermost,
    so the connection survives it)

Every body is `{"type": "about:blank", "title", "status", "detail", "field"?, "errors"?}`;
`field` names the offending input in dotted form (`scaling.min_replicas`, `label`, `body`).
A 500 never carries a traceback: it is logged instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from podium.core.asgi import Message, Receive, Scope, Send
from podium.core.errors import Invalid, PodiumError, Unauthenticated
from podium.core.problems import PROBLEM_JSON as PROBLEM_JSON
from podium.core.problems import problem_doc, retry_after, title_for

log = logging.getLogger(__name__)

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_UNPARSABLE = "not UTF-8, or nested too deep"  # what makes FastAPI fail to decode a body


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """What every error response carries."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[FieldError] | None = None


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    field: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    extra = {"errors": [e.model_dump() for e in errors]} if errors else {}
    return JSONResponse(
        problem_doc(status, detail, title=title, field=field, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def from_podium_error(error: PodiumError) -> JSONResponse:
    wait = retry_after(error)
    headers = {"Retry-After": wait} if wait is not None else {}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="podium"'
    errors = [FieldError(field=error.field, message=error.message)] if error.field else None
    return problem_response(
        error.status,
        error.message,
        title=error.title,
        field=error.field,
        errors=errors,
        headers=headers,
    )


def from_validation_errors(raw: Iterable[Mapping[str, Any]]) -> JSONResponse:
    """A 422 listing pydantic's errors, the first one as `field` and `detail`."""
    errors = [FieldError(field=_dotted(e), message=_message(e)) for e in raw]
    if not errors:
        errors = [FieldError(field="body", message="invalid request")]
    first = errors[0]
    return problem_response(
        Invalid.status,
        f"{first.field}: {first.message}",
        title=Invalid.title,
        field=first.field,
        errors=errors,
    )


def install(app: FastAPI) -> None:
    """Register every handler on `app`."""

    async def podium_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PodiumError)
        return from_podium_error(exc)

    async def request_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return from_validation_errors(exc.errors())

    async def model_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)
        return from_validation_errors(exc.errors())

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else title_for(exc.status_code)
        if exc.status_code == 400 and "parsing the body" in detail:
            # A body that is not JSON is one error, whatever byte gives it away: the same
            # 422 as malformed JSON (FastAPI raises this 400 when decoding fails: bytes that
            # are not UTF-8, or JSON nested deeper than the parser recurses).
            error = {"type": "json_invalid", "ctx": {"error": _UNPARSABLE}}  # field: body
            return from_validation_errors([error])
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route"
        return problem_response(exc.status_code, detail, headers=exc.headers)

    app.add_exception_handler(PodiumError, podium_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(ValidationError, model_invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(ServerErrorGuard)


class ServerErrorGuard:
    """Pure ASGI middleware for true server bugs: a 500 problem, and the exception stops here.

    (Starlette's own handler for `Exception` answers the 500 and then re-raises, so the
    server drops the connection without `connection: close`; a keep-alive client then
    fails its next request.) When the answer had already begun, the connection is the only
    way left to say it is cut short, so the exception goes on to the server.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = ended = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                ended = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled error on %s %s", scope.get("method"), scope["path"], exc_info=exc)
            if ended:
                return  # the client has its whole answer; keep the connection
            if started:
                raise
            response = problem_response(500, "internal error")
            await response(scope, receive, send)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route may answer (FastAPI describes
    each by its status phrase)."""
    return {s: {"model": Problem} for s in statuses}


def _dotted(error: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        return "body"
    if loc and loc[0] in _LOCATIONS:
        return ".".join(loc[1:]) or loc[0]
    return ".".join(loc) or "body"


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        msg = f"malformed JSON ({reason})" if reason else "malformed JSON"
    return msg
