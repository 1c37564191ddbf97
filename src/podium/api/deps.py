"""What the API needs from the rest of Podium (`ApiContext`) and the FastAPI dependencies
that hand it to routes.

The context is built by the entry point (server/app.py or a test) and stored on
`app.state.podium` by `create_api`; nothing here runs at import time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request

from podium.api.services.endpoints import EndpointService
from podium.api.services.models import ModelService
from podium.artifacts.store import ArtifactStore
from podium.backends.base import ReplicaLogs
from podium.core.access import CSRF_COOKIE as CSRF_COOKIE
from podium.core.access import (  # re-exported (routes/session.py)
    CSRF_HEADER,
    NOBODY_CHECKS,
    PRINCIPAL_KEY,
    AuthFailure,
    Principal,
    TokenDirectory,
    bearer,
)
from podium.core.access import SESSION_COOKIE as SESSION_COOKIE  # likewise
from podium.core.errors import Forbidden, Unauthenticated
from podium.core.request_record import RecordBuffer
from podium.core.routing import EndpointLoad, GatewayView, RoutingSource
from podium.core.service_counts import ServiceSnapshot
from podium.core.settings import ApiLimits, Settings
from podium.store import Database, UnitOfWork

DEFAULT_MAX_UPLOAD_BYTES = ApiLimits().max_upload_bytes  # 20 GiB


class LiveSource(Protocol):
    """What `GET /api/v1/live` reads: the embedded gateway's figures right now, and the
    request records' buffer (None: records are off)."""

    def service_snapshot(self) -> ServiceSnapshot: ...

    def load_snapshot(self) -> Mapping[str, EndpointLoad]: ...

    def outstanding(self, replica_id: str) -> int: ...

    @property
    def records(self) -> RecordBuffer | None: ...


@dataclass(frozen=True)
class GatewayLive:
    """The `LiveSource` of a server with an embedded gateway (server/app.py wires it)."""

    gateway: GatewayView
    records: RecordBuffer | None = None

    def service_snapshot(self) -> ServiceSnapshot:
        return self.gateway.service_snapshot()

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return self.gateway.load_snapshot()

    def outstanding(self, replica_id: str) -> int:
        return self.gateway.outstanding(replica_id)


@dataclass
class ApiContext:
    settings: Settings
    db: Database
    artifacts: ArtifactStore
    logs: ReplicaLogs  # replica logs are read only through the backend
    wake: Callable[[str | None], None]  # wakes the controller (for one endpoint, or all)
    routing: RoutingSource | None = None
    # The live tokens (`settings.auth`); the server keeps it in step with the store.
    tokens: TokenDirectory | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    log_poll_s: float = 0.5  # how often `logs?follow=true` looks for new lines
    replica_timeout_s: float = 5.0  # a replica's answer to the API (its /metrics)
    live: LiveSource | None = None  # the gateway's live figures (None: no gateway here)


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.podium
    return ctx


CtxDep = Annotated[ApiContext, Depends(get_ctx)]


def get_settings(ctx: CtxDep) -> Settings:
    return ctx.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_uow(ctx: CtxDep) -> Iterator[UnitOfWork]:
    """A read-only unit of work for the request, closed when the route returns (before the
    response is sent). It never waits for writers; changes go through `services`, which
    commit before they wake the controller."""
    with ctx.db.unit_of_work(read_only=True) as uow:
        yield uow


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_caller(request: Request, ctx: CtxDep) -> Principal:
    """Who calls: the principal of the request's bearer token, else of its session cookie
    (everyone may do everything when `settings.auth` is off). 401 when there is no valid
    token; 403 when a cookie-authenticated request that changes something lacks the CSRF
    header. Whether the caller may do what the route does is the route's own `needs`
    dependency (api/access.py)."""
    if not ctx.settings.auth:
        request.scope[PRINCIPAL_KEY] = NOBODY_CHECKS  # the audit trail names it
        return NOBODY_CHECKS
    found = request.scope.get(PRINCIPAL_KEY)
    if isinstance(found, Principal):
        return found
    tokens = ctx.tokens if ctx.tokens is not None else TokenDirectory()
    token = bearer(request.headers.get("authorization"))
    by_cookie = token is None and SESSION_COOKIE in request.cookies
    if by_cookie:
        token = request.cookies[SESSION_COOKIE]
    result = tokens.authenticate(token)
    if isinstance(result, AuthFailure):
        raise Unauthenticated(result.value)
    if by_cookie and request.method not in SAFE_METHODS:
        _check_csrf(request)
    request.scope[PRINCIPAL_KEY] = result
    return result


def _check_csrf(request: Request) -> None:
    """A cookie rides along on any request the browser sends, a forged one included; only
    a page of this origin can read `podium_csrf` and echo it in the header."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER, "")
    # compare_digest takes str of ASCII only (TypeError otherwise): compare bytes, so a
    # header or cookie of any characters is a mismatch, not a 500.
    same = hmac.compare_digest(
        expected.encode("utf-8", "surrogateescape"), given.encode("utf-8", "surrogateescape")
    )
    if not expected or not given or not same:
        raise Forbidden(
            f"CSRF check failed: a request authenticated by the session cookie that changes "
            f"something must send header {CSRF_HEADER} equal to cookie {CSRF_COOKIE}",
            field=CSRF_HEADER,
        )


CallerDep = Annotated[Principal, Depends(get_caller)]


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def get_endpoint_service(ctx: CtxDep) -> EndpointService:
    return EndpointService(ctx.settings, ctx.db, ctx.wake, ctx.routing)


EndpointsDep = Annotated[EndpointService, Depends(get_endpoint_service)]


def get_model_service(ctx: CtxDep) -> ModelService:
    return ModelService(ctx.db, ctx.artifacts, ctx.settings.home / "tmp")


ModelsDep = Annotated[ModelService, Depends(get_model_service)]
