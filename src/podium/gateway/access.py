"""Access control at the gateway: who may invoke an endpoint, and how often.

`AccessStage` is a pipeline `Stage` (`Gateway(..., stages=[AccessStage(directory,
auth=...)])`). For each invocation, from the routing table alone (never the store):

1. a `protected` endpoint needs a token with `invoke` on the route's project: carried as
   `Authorization: Bearer <token>`, or as the `podium_session` cookie, which must come with
   an `X-CSRF-Token` header equal to the `podium_csrf` cookie (every method: invocations
   are POSTs). No or a bad token: 401 with `WWW-Authenticate: Bearer realm="podium"`; a
   token without `invoke` on the project: 403 naming the token, the scope and the
   project. A `public` endpoint needs no token and does not look at one. Either way a
   Podium token (`Authorization` header, or the `Cookie` header holding the session
   cookie) is not forwarded: `headers.request_head` keeps it aside for this stage (a
   replica runs user code and never sees a caller's token).
2. rate limits: a token bucket per token (`Principal.rate_limit`, protected endpoints) and
   one per endpoint (`EndpointRoute.rate_limit`, all callers together): over either, 429
   with `Retry-After` (whole seconds, at least 1).

With `auth=False` (`podium up --no-auth`) only the endpoint rate limits apply. Nothing about
a token is cached: each check is a dict lookup and one SHA-256 in the `TokenDirectory`, so
`directory.drop` refuses the token's next request. Under `/v1/` refusals take OpenAI's
error shape (the router's `send`), with codes `invalid_api_key`, `rate_limit_exceeded`.
Counted for Prometheus: `podium_gateway_auth_refused_total{endpoint, code}` and
`podium_gateway_rate_limited_total{endpoint, by}`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podium.core.access import (
    CSRF_COOKIE,
    CSRF_HEADER,
    NOBODY_CHECKS,
    PRINCIPAL_KEY,
    SESSION_COOKIE,
    AuthFailure,
    Principal,
    RateLimit,
    Scope,
    TokenDirectory,
    Visibility,
    bearer,
)
from podium.core.request_record import ErrorClass
from podium.core.routing import EndpointRoute
from podium.core.tasks import TASK_KEY
from podium.gateway.activator import Refusal
from podium.gateway.invocation import Invocation
from podium.gateway.rate_limit import Buckets, retry_after
from podium.gateway.responses import Scope as AsgiScope

_AUTHORIZATION = b"authorization"
_COOKIE = b"cookie"
_CSRF_HEADER = CSRF_HEADER.lower().encode()
_BEARER = b"Bearer "
_INVOKE = Scope.INVOKE
_CACHED = PRINCIPAL_KEY  # where `AccessStage.principal` leaves its answer
_UNSET = object()
_CHALLENGE = ((b"www-authenticate", b'Bearer realm="podium"'),)
PUBLIC = Visibility.PUBLIC


class AccessStage(Collector):
    """The gateway's authentication, visibility and rate-limit stage (module docstring)."""

    def __init__(self, directory: TokenDirectory, *, auth: bool) -> None:
        self._directory = directory
        self._auth = auth
        self._by_token = Buckets()
        self._by_endpoint = Buckets()
        self.refused: dict[tuple[str, str], int] = {}  # (endpoint, status) -> count
        self.limited: dict[tuple[str, str], int] = {}  # (endpoint, "token"|"endpoint") -> count

    # -- who --------------------------------------------------------------------------------

    def principal(self, scope: AsgiScope) -> Principal | Refusal | None:
        """The caller of this request (`pipeline.Authenticates`): a principal, None without
        credentials, or the refusal for bad ones. Remembered in the scope."""
        if not self._auth:
            return NOBODY_CHECKS
        cached = scope.get(_CACHED, _UNSET)
        if cached is not _UNSET:
            return cached  # type: ignore[no-any-return]
        authorization = cookie = csrf = None
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                authorization = value
            elif name == _COOKIE:
                cookie = value if cookie is None else cookie + b"; " + value
            elif name == _CSRF_HEADER:
                csrf = value
        who = self._authenticate(authorization, cookie, csrf)
        scope[_CACHED] = who
        return who

    def _authenticate(
        self, authorization: bytes | None, cookie: bytes | None, csrf: bytes | None
    ) -> Principal | Refusal | None:
        if authorization is None:
            token = None
        elif authorization.startswith(_BEARER):  # the usual spelling, without a copy more
            token = authorization[7:].decode("latin-1").strip() or None
        else:
            token = bearer(authorization.decode("latin-1"))
        if token is None and cookie is not None:
            cookies = _cookies(cookie.decode("latin-1"))
            token = cookies.get(SESSION_COOKIE)
            if token is not None:
                expected = cookies.get(CSRF_COOKIE)
                if not expected or csrf is None:
                    return _csrf_refusal()
                if not hmac.compare_digest(csrf, expected.encode("latin-1")):
                    return _csrf_refusal()
        if token is None:
            return None
        who = self._directory.authenticate(token)
        if isinstance(who, AuthFailure):
            return _unauthenticated(who)
        return who

    # -- Stage ------------------------------------------------------------------------------

    async def check(self, call: Invocation) -> Refusal | None:
        route = call.route
        token_limit: RateLimit | None = None
        token_id = ""
        if self._auth and route.visibility is not PUBLIC:
            who = call.scope.get(_CACHED, _UNSET)  # the OpenAI router asked already
            if who is _UNSET:
                head = call.head  # `request_head` kept the credentials aside
                who = self._authenticate(head.authorization, head.cookie, head.csrf)
                call.scope[_CACHED] = who  # the request record names the caller from it
            if who is None:
                return self._refuse(route, _unauthenticated(AuthFailure.MISSING))
            if isinstance(who, Refusal):
                return self._refuse(route, who)
            if not who.may(_INVOKE, route.project):
                return self._refuse(route, _forbidden(who, route))
            token_limit = who.rate_limit
            token_id = who.token_id
        endpoint_limit = route.rate_limit
        if token_limit is None and endpoint_limit is None:
            return None
        if TASK_KEY in call.scope:
            return None  # a task's run: counted by the rate limits when it was enqueued
        now = time.monotonic()
        if token_limit is not None:
            wait = self._by_token.wait(token_id, token_limit, now)
            if wait > 0.0:
                return self._limit(route, "token", token_limit, wait)
        if endpoint_limit is not None:
            wait = self._by_endpoint.wait(route.name, endpoint_limit, now)
            if wait > 0.0:
                return self._limit(route, "endpoint", endpoint_limit, wait)
            self._by_endpoint.take(route.name)
        if token_limit is not None:
            self._by_token.take(token_id)
        return None

    def finish(self, call: Invocation, status: int, seconds: float) -> None:
        return None

    def _refuse(self, route: EndpointRoute, refusal: Refusal) -> Refusal:
        key = (route.name, str(refusal.status))
        self.refused[key] = self.refused.get(key, 0) + 1
        return refusal

    def _limit(self, route: EndpointRoute, by: str, limit: RateLimit, wait: float) -> Refusal:
        key = (route.name, by)
        self.limited[key] = self.limited.get(key, 0) + 1
        seconds = retry_after(wait)
        whose = "this token's" if by == "token" else f"endpoint {route.name!r}'s"
        return Refusal(
            429,
            f"{whose} rate limit of {limit.rps:g} requests/s (burst {limit.burst}) is "
            f"reached; retry in {seconds} s",
            "Too Many Requests",
            headers=((b"retry-after", str(seconds).encode()),),
            extra={"endpoint": route.name, "limited_by": by, "retry_after": seconds},
            code="rate_limit_exceeded",
            error=ErrorClass.RATE_LIMITED,
        )

    # -- metrics ----------------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        refused = CounterMetricFamily(
            "podium_gateway_auth_refused",
            "Invocations refused by the gateway's access check (401, 403), by endpoint and status.",
            labels=["endpoint", "code"],
        )
        for (endpoint, code), count in sorted(self.refused.items()):
            refused.add_metric([endpoint, code], count)
        limited = CounterMetricFamily(
            "podium_gateway_rate_limited",
            "Invocations refused with 429 by a rate limit, by endpoint and whose limit.",
            labels=["endpoint", "by"],
        )
        for (endpoint, by), count in sorted(self.limited.items()):
            limited.add_metric([endpoint, by], count)
        return [refused, limited]


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq and name not in out:
            out[name] = value.strip().strip('"')
    return out


def _unauthenticated(failure: AuthFailure) -> Refusal:
    return Refusal(
        401,
        f"this endpoint needs a token with scope 'invoke': {failure.value}",
        "Unauthorized",
        headers=_CHALLENGE,
        code="invalid_api_key",
        error=ErrorClass.UNAUTHENTICATED,
    )


def _csrf_refusal() -> Refusal:
    return Refusal(
        403,
        f"a request authenticated by the {SESSION_COOKIE} cookie must send the header "
        f"X-CSRF-Token equal to the {CSRF_COOKIE} cookie (CSRF check failed)",
        "Forbidden",
        extra={"field": "X-CSRF-Token"},
        code="csrf_token_mismatch",
        error=ErrorClass.FORBIDDEN,
    )


def _forbidden(who: Principal, route: EndpointRoute) -> Refusal:
    return Refusal(
        403,
        f"token {who.name!r} ({who.token_id}) lacks scope 'invoke' on project {route.project!r}",
        "Forbidden",
        extra={"endpoint": route.name, "project": route.project, "scope": "invoke"},
        error=ErrorClass.FORBIDDEN,
    )
