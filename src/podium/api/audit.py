"""The audit trail: every control request that changes something (POST, PUT, PATCH,
DELETE on a route of the API), allowed or refused, leaves one row in the store's audit log.

`AuditTrail` is pure ASGI middleware, so a new mutating route is audited with no code of
its own. What it records comes from the request, the matched route and the answer:

    actor, actor_name   the principal `deps.get_caller` found ("-", "anonymous" if none)
    action              the route's `openapi_extra["x-podium-action"]`, else derived from
                        its path and method: `POST /endpoints` → endpoint.create,
                        `POST /endpoints/{name}/scale` → endpoint.scale, PATCH → update,
                        PUT → set, DELETE → delete
    object_kind/name    the path's first segment, singular; the `name`/`id` path parameter,
                        else the answer's `id`/`name`, else the request body's `name`
    project             what the route's `needs` dependency resolved (api/access.py)
    before              the object's state before the change (`state_before`, asked by
                        `needs` once the caller is allowed): endpoints, models, tokens
    after               the JSON answer of a success
    address, result     the client's address; the HTTP status answered
    detail              the problem's detail of a failure

Values under the keys `token`, `value` and `key` are replaced by "[redacted]" wherever they are
nested, so a token string or a secret never reaches the log. The row is written before
the answer's head goes out (the answers of mutating routes are small), so a client that
reads the log right after its action sees it. A failed write never fails the action: it
is logged and counted (`AuditWriter.failures`).

Attempts with no valid token (no principal: actor "-") cost nothing to send, so they are
recorded within a budget (`AnonymousBudget`: 60 a minute, bursts of 60) and past it only
counted (`AuditWriter.anonymous.unrecorded`, on `app.state.audit`) and logged at most once
a minute ("N unauthenticated attempts not recorded"): whoever reaches the port cannot grow
the log without bound. Attempts by a token's holder are always recorded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from podium.api.services import access_views, views
from podium.core.access import DEFAULT_PROJECT, PRINCIPAL_KEY, Principal, endpoint_key
from podium.core.asgi import ASGIApp, Message, Receive, Scope, Send
from podium.core.errors import NotFound
from podium.store import Database

log = logging.getLogger(__name__)

PROJECT_KEY = "podium.project"  # request scope keys set by api/access.py
BEFORE_KEY = "podium.audit.before"
ACTION_KEY = "x-podium-action"  # a route's openapi_extra key naming its action

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REDACTED = "[redacted]"
_SECRET_KEYS = frozenset({"token", "value", "key"})  # key: a callback signing key
_VERBS = {"POST": "create", "PUT": "set", "PATCH": "update", "DELETE": "delete"}
_KEPT_BODY = 256 * 1024  # answers up to this size are parsed for `after`
_KEPT_REQUEST = 64 * 1024  # request bodies up to this size are parsed for the name
_PREFIX = "/api/v1/"


def action_of(route: APIRoute, method: str) -> tuple[str, str]:
    """`(action, object_kind)` of a mutating route (see the module doc)."""
    parts = [p for p in route.path_format.removeprefix(_PREFIX).split("/") if p]
    kind = _singular(parts[0]) if parts else "api"
    named = (route.openapi_extra or {}).get(ACTION_KEY)
    if isinstance(named, str):
        return named, named.partition(".")[0]
    verb = _VERBS.get(method, method.lower())
    if len(parts) > 1 and not parts[-1].startswith("{") and parts[-2].startswith("{"):
        verb = parts[-1]  # POST /endpoints/{name}/scale
    return f"{kind}.{verb}", kind


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def redact(value: Any) -> Any:
    """`value` with every `token`/`value` key's value replaced, at any depth."""
    if isinstance(value, Mapping):
        return {k: REDACTED if k in _SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _compact(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """An endpoint's view without its replicas (they change on their own)."""
    if kind == "endpoint":
        return {k: v for k, v in doc.items() if k not in ("replicas", "ready_replicas")}
    return doc


def state_before(request: Request, ctx: Any, project: str | None) -> dict[str, Any] | None:
    """The object's public view before a change, for the routes whose object has one
    (`ctx` is the ApiContext). Runs in a worker thread."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    _, kind = action_of(route, request.method)
    params = request.path_params
    name = params.get("name")
    project = project or DEFAULT_PROJECT
    doc: dict[str, Any] | None = None
    try:
        with ctx.db.unit_of_work(read_only=True) as uow:
            if kind == "endpoint" and name:
                record = uow.endpoints.get(endpoint_key(project, name))
                doc = views.endpoint(uow, ctx.settings, record).model_dump(mode="json")
            elif kind == "model" and name:
                doc = views.model(uow, endpoint_key(project, name)).model_dump(mode="json")
            elif kind == "token" and params.get("id"):
                doc = access_views.token(uow.tokens.get(params["id"])).model_dump(mode="json")
    except NotFound:
        return None
    return None if doc is None else redact(_compact(kind, doc))


ANONYMOUS_PER_MINUTE = 60  # entries without a principal recorded per minute, on average
ANONYMOUS_BURST = 60  # ... and at once
_LOG_EVERY_S = 60.0


@dataclass
class AnonymousBudget:
    """A token bucket for the entries of attempts without a valid token (module doc).
    `admit` runs on the event loop only, so it needs no lock."""

    per_minute: float = ANONYMOUS_PER_MINUTE
    burst: float = ANONYMOUS_BURST
    clock: Callable[[], float] = time.monotonic
    unrecorded: int = 0  # attempts not recorded since the start
    _left: float = field(init=False)
    _at: float = field(init=False)
    _pending: int = 0  # not recorded and not yet logged
    _logged_at: float = float("-inf")

    def __post_init__(self) -> None:
        self._left = self.burst
        self._at = self.clock()

    def admit(self) -> bool:
        """Whether one more such entry may be written; counts (and logs) it when not."""
        now = self.clock()
        self._left = min(self.burst, self._left + (now - self._at) * self.per_minute / 60)
        self._at = now
        admitted = self._left >= 1
        if admitted:
            self._left -= 1
        else:
            self.unrecorded += 1
            self._pending += 1
        if self._pending and now - self._logged_at >= _LOG_EVERY_S:
            log.warning(
                "%d unauthenticated attempts not recorded in the audit log (over %g a minute)",
                self._pending,
                self.per_minute,
            )
            self._pending = 0
            self._logged_at = now
        return admitted


@dataclass
class AuditWriter:
    """Writes entries to the store; never raises. `failures` counts the writes lost;
    `anonymous` bounds those of attempts without a valid token."""

    db: Database
    failures: int = 0
    anonymous: AnonymousBudget = field(default_factory=AnonymousBudget)

    def write(self, entry: dict[str, Any]) -> None:
        try:
            with self.db.unit_of_work() as uow:
                uow.audit.add(**entry)
        except Exception as exc:  # the action stands whatever happens to its record
            self.failures += 1
            log.error(
                "audit entry lost (%s %s, result %s): %s",
                entry.get("action"),
                entry.get("object_name"),
                entry.get("result"),
                type(exc).__name__,
            )


class AuditTrail:
    """Pure ASGI middleware recording each mutating control request (module doc)."""

    def __init__(self, app: ASGIApp, writer: AuditWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in AUDITED_METHODS:
            await self.app(scope, receive, send)
            return
        request_body = bytearray()
        keep_request = "json" in _header(scope, b"content-type")

        async def reading() -> Message:
            message = await receive()
            small = len(request_body) <= _KEPT_REQUEST
            if keep_request and small and message["type"] == "http.request":
                request_body.extend(message.get("body", b""))
            return message

        head: Message | None = None
        held: list[Message] = []
        answer = bytearray()
        written = False

        async def sending(message: Message) -> None:
            nonlocal head, written
            if message["type"] == "http.response.start":
                head = message
                return
            if message["type"] != "http.response.body" or written:
                await send(message)
                return
            held.append(message)
            answer.extend(message.get("body", b""))
            if message.get("more_body") and len(answer) <= _KEPT_BODY:
                return
            written = True  # the whole (small) answer, or the start of a big one
            status = int(head["status"]) if head else 500
            whole = not message.get("more_body")
            await self._record(scope, status, bytes(answer) if whole else b"", bytes(request_body))
            if head is not None:
                await send(head)
            for m in held:
                await send(m)

        try:
            await self.app(scope, reading, sending)
        except Exception:
            if not written:
                await self._record(scope, 500, b"", bytes(request_body))
            raise

    async def _record(self, scope: Scope, status: int, answer: bytes, body: bytes) -> None:
        try:
            entry = _entry(scope, status, answer, body)
        except Exception as exc:  # a bug here must not cost the action
            self.writer.failures += 1
            log.error("audit entry not built: %s", type(exc).__name__)
            return
        if entry is None:
            return
        anonymous = not isinstance(scope.get(PRINCIPAL_KEY), Principal)
        if anonymous and not self.writer.anonymous.admit():
            return
        await run_in_threadpool(self.writer.write, entry)


def change_entry(
    caller: Principal,
    *,
    action: str,
    project: str,
    name: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    address: str | None,
) -> dict[str, Any]:
    """The row of one change a request carried out besides its own (apply's endpoints,
    secrets, projects), filed under the change's own project."""
    kind = action.partition(".")[0]
    return {
        "actor": caller.token_id,
        "actor_name": caller.name,
        "action": action,
        "object_kind": kind,
        "object_name": name,
        "project": project,
        "before": None if before is None else redact(before),
        "after": None if after is None else redact(after),
        "address": address,
        "result": 200,
        "detail": None,
    }


def _entry(scope: Scope, status: int, answer: bytes, body: bytes) -> dict[str, Any] | None:
    route = scope.get("route")
    method = scope["method"]
    if not isinstance(route, APIRoute) or method not in (route.methods or ()):
        return None  # no such route or method: not a control action
    action, kind = action_of(route, method)
    caller = scope.get(PRINCIPAL_KEY)
    doc = _json(answer)
    params: Mapping[str, Any] = scope.get("path_params") or {}
    name = params.get("name") or params.get("id")
    if name is not None and "version" in params:
        name = f"{name}:{params['version']}"
    if name is None and status < 400:
        name = doc.get("id") or doc.get("name")
    if name is None:
        given = _json(body).get("name")
        name = given if isinstance(given, str) else None
    project = scope.get(PROJECT_KEY)
    if kind == "project" and project is None:
        project = name
    client = scope.get("client")
    ok = status < 400
    return {
        "actor": caller.token_id if isinstance(caller, Principal) else "-",
        "actor_name": caller.name if isinstance(caller, Principal) else "anonymous",
        "action": action,
        "object_kind": kind,
        "object_name": None if name is None else str(name),
        "project": project,
        "before": scope.get(BEFORE_KEY),
        "after": redact(_compact(kind, doc)) if ok and doc else None,
        "address": client[0] if client else None,
        "result": status,
        "detail": None if ok else str(doc.get("detail") or "")[:2000] or None,
    }


def _json(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return {}
    return doc if isinstance(doc, dict) else {}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1").lower()
    return ""
