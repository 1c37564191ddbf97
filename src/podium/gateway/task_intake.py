"""The async route (issue 13): `POST /endpoints/{name}/async/{path…}` (and under
`/p/{project}/`) stores the call as a task and answers 202 at once.

The gateway's route resolves the endpoint and the replica path exactly as for a synchronous
call; `Pipeline.admit_task` then runs the same stages (authentication, visibility, rate
limits, the request record of this enqueue call) and reads the body bounded, and
`TaskIntake.enqueue` validates the task's headers, stores it through the `TaskStore` in a
thread (SQLite blocks) and answers:

    202 {"task_id", "status_url", "status": "pending"}   Location: /api/v1/tasks/{id}
        (`Idempotency-Replayed: true` when an Idempotency-Key found the task again)
    400 a bad header, named (`header`)          405 not a POST
    409 the Idempotency-Key with another body   429 `tasks.max_pending` pending already
    503 the store is busy (`Retry-After`)

Only headers a replica may see travel with the task (`FORWARDED`): never credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from podium.core.access import NOBODY_CHECKS, PRINCIPAL_KEY, Principal
from podium.core.asgi import send_whole
from podium.core.callbacks import callback_refusal
from podium.core.errors import Conflict, RateLimited, Retryable
from podium.core.routing import EndpointRoute
from podium.core.settings import TaskSettings
from podium.core.tasks import (
    DEFAULT_PRIORITY,
    MAX_IDEMPOTENCY_KEY,
    MAX_PRIORITY,
    MAX_TTL_S,
    MIN_PRIORITY,
    MIN_TTL_S,
    TASK_KEY,
)
from podium.gateway.invocation import Invocation
from podium.gateway.pipeline import Pipeline
from podium.gateway.responses import JSON, Receive, Scope, Send, send_problem
from podium.gateway.task_store import TaskStore
from podium.store.task_records import NewTask

log = logging.getLogger("podium.gateway")

ASYNC = "async/"  # what follows `/endpoints/{name}/` on the async route
TASKS_URL = "/api/v1/tasks/"
PRINCIPAL = PRINCIPAL_KEY  # where the access stage leaves the caller
# Request headers that travel with a task to the replica (lower case): what describes the
# body and the answer wanted. Credentials never do (`authorization`, `cookie`); nor do the
# task's own options, the gateway's (`x-podium-wait-timeout`) or hop-by-hop headers.
FORWARDED = frozenset({"content-type", "content-encoding", "accept", "accept-language"})
MAX_FORWARDED = 32  # headers kept at most; each value at most this many characters:
MAX_HEADER_VALUE = 1024
_IDEMPOTENCY = b"idempotency-key"
_CALLBACK = b"x-podium-callback-url"
_PRIORITY = b"x-podium-priority"
_TTL = b"x-podium-task-ttl"


class BadHeader(Exception):
    """A task header that is not valid; `header` names it (the 400's `header`)."""

    def __init__(self, header: str, detail: str) -> None:
        super().__init__(detail)
        self.header = header
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """What the caller asked of the task through its headers."""

    idempotency_key: str | None = None
    callback_url: str | None = None
    priority: int = DEFAULT_PRIORITY
    ttl_s: float | None = None  # None: the endpoint's `tasks.result_ttl_s`
    headers: tuple[tuple[str, str], ...] = ()  # forwarded with it


def task_options(raw: list[tuple[bytes, bytes]], callback_hosts: tuple[str, ...]) -> TaskOptions:
    """Parse and check the task headers of a request; `BadHeader` names the first bad one."""
    key = callback = priority = ttl = None
    forwarded: list[tuple[str, str]] = []
    for name_b, value_b in raw:
        if name_b == _IDEMPOTENCY:
            key = _text(value_b, "Idempotency-Key")
        elif name_b == _CALLBACK:
            callback = _text(value_b, "X-Podium-Callback-Url")
        elif name_b == _PRIORITY:
            priority = _text(value_b, "X-Podium-Priority")
        elif name_b == _TTL:
            ttl = _text(value_b, "X-Podium-Task-Ttl")
        else:
            name = name_b.decode("latin-1").lower()
            if name in FORWARDED and len(forwarded) < MAX_FORWARDED:
                forwarded.append((name, value_b.decode("latin-1")[:MAX_HEADER_VALUE]))
    if key is not None and not (
        0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable()
    ):
        raise BadHeader(
            "Idempotency-Key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
        )
    if callback is not None and (why := callback_refusal(callback, callback_hosts)) is not None:
        raise BadHeader("X-Podium-Callback-Url", f"X-Podium-Callback-Url is refused: {why}")
    level = DEFAULT_PRIORITY
    if priority is not None:
        if not (priority.strip().isdigit() and MIN_PRIORITY <= int(priority) <= MAX_PRIORITY):
            raise BadHeader(
                "X-Podium-Priority",
                f"X-Podium-Priority must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY} "
                f"(higher runs first), not {priority[:40]!r}",
            )
        level = int(priority)
    ttl_s = None
    if ttl is not None:
        try:
            ttl_s = float(ttl)
        except ValueError:
            ttl_s = math.nan
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:  # NaN fails too
            raise BadHeader(
                "X-Podium-Task-Ttl",
                f"X-Podium-Task-Ttl must be seconds from {MIN_TTL_S:g} to {MAX_TTL_S:g}, "
                f"not {ttl[:40]!r}",
            )
    return TaskOptions(key, callback, level, ttl_s, tuple(forwarded))


def _text(value: bytes, header: str) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise BadHeader(header, f"{header} must be ASCII") from None


class TaskIntake:
    """The async route's handler (module docstring). `on_enqueued` is called on the event
    loop after each new task (the dispatcher wakes at once)."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: TaskStore,
        settings: TaskSettings,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._settings = settings
        self.on_enqueued = on_enqueued

    async def __call__(
        self, route: EndpointRoute, scope: Scope, receive: Receive, send: Send, target: str
    ) -> None:
        if scope["method"] != "POST":
            self._pipeline.unrouted()
            await send_problem(
                send,
                405,
                f"the async route takes POST only, not {scope['method']}",
                title="Method Not Allowed",
                headers=((b"allow", b"POST"),),
                endpoint=route.name,
            )
            return

        async def enqueue(call: Invocation, body: bytes) -> int:
            return await self.enqueue(call, body, send)

        await self._pipeline.admit_task(route, scope, receive, send, target, enqueue)

    async def enqueue(self, call: Invocation, body: bytes, send: Send) -> int:
        """Validate the task's headers, store it, answer 202 (or the refusal)."""
        route, request_id = call.route, call.head.request_id
        try:
            options = task_options(call.scope["headers"], self._settings.callback_hosts)
        except BadHeader as e:
            await send_problem(
                send, 400, e.detail, title="Invalid header", request_id=request_id, header=e.header
            )
            return 400
        who = call.scope.get(PRINCIPAL)
        token_id = who.token_id if isinstance(who, Principal) and who is not NOBODY_CHECKS else None
        spec = route.tasks
        new = NewTask(
            endpoint=route.name,
            project=route.project,
            method="POST",
            path=call.target,
            body=body,
            headers=options.headers,
            priority=options.priority,
            max_attempts=spec.max_attempts,
            lease_s=spec.lease_for(route.timeout_s),
            ttl_s=options.ttl_s if options.ttl_s is not None else spec.result_ttl_s,
            idempotency_key=options.idempotency_key,
            token_id=token_id,
            callback_url=options.callback_url,
        )
        try:
            task, created = await asyncio.to_thread(self._store.enqueue, new, spec.max_pending)
        except Conflict as e:
            await send_problem(send, 409, e.message, request_id=request_id, field=e.field)
            return 409
        except RateLimited as e:
            seconds = str(max(1, math.ceil(e.retry_after))).encode()
            await send_problem(
                send,
                429,
                e.message,
                title=RateLimited.title,
                request_id=request_id,
                headers=((b"retry-after", seconds),),
                field=e.field,
                endpoint=route.name,
            )
            return 429
        except Retryable as e:  # the store is busy (SQLite locked a while): the caller retries
            log.warning("could not enqueue a task of %s: %s", route.name, e.message)
            seconds = str(max(1, math.ceil(e.retry_after))).encode()
            await send_problem(
                send,
                503,
                "the task queue is busy; retry",
                title=Retryable.title,
                request_id=request_id,
                headers=((b"retry-after", seconds),),
                endpoint=route.name,
            )
            return 503
        call.scope[TASK_KEY] = task.id  # the enqueue call's record names its task too
        url = TASKS_URL + task.id
        headers = [(b"location", url.encode()), (b"x-request-id", request_id.encode("latin-1"))]
        if not created:
            headers.append((b"idempotency-replayed", b"true"))
        doc = {"task_id": task.id, "status_url": url, "status": task.status.value}
        await send_whole(send, 202, JSON, json.dumps(doc).encode(), headers)
        if created and self.on_enqueued is not None:
            self.on_enqueued()
        return 202
