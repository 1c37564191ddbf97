"""The request pipeline: the one path every invocation of an endpoint takes.

A route (`app` for `/endpoints/{name}/…`, `openai_router` for `/v1/…`) only resolves which
endpoint and which replica path a request is for, then calls `Pipeline.invoke`, which does
the rest in this order, the same for both:

    1. metering starts (the endpoint's request and in-flight counts, the clock)
    2. stages: each `Stage.check` in order may refuse the request   <- authentication,
                                                                       rate limits
    3. refusal of a paused or failed endpoint (`activator.refusal_for`)
    4. the request body, unless the route already read it (413 past the limit)
    5. admission: a free replica slot at once, or held in the activator (`X-Podium-Wait-
       Timeout`, 503/504 refusals)
    6. forward (`proxy`), and once more through admission when no replica could be reached
       and the controller publishes a newer table (then 502)
    7. finish: metering (status class, latency), then each `Stage.finish`  <- the request
                                                                             record

Later capabilities attach as a `Stage` passed to the `Gateway` (`stages=`), never by
editing a route. With no stage (the default) the pipeline allocates nothing for them and
awaits nothing more: the hot path is steps 1, 3, 5 (a comparison when a slot is free), 6, 7.
With stages, the `invocation.Invocation` they share is also told, along the way, what the
request record needs: the body, the time held, why the gateway refused or failed it.
Every invocation binds its request id to the log context (`core.log_context`) first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from podium.core.access import Principal
from podium.core.errors import TooLarge
from podium.core.log_context import bind_request
from podium.core.request_record import ErrorClass
from podium.core.routing import EndpointRoute, RoutingSource
from podium.core.settings import GatewaySettings
from podium.gateway.activator import (
    Activator,
    InvalidWaitTimeout,
    Refusal,
    refusal_for,
    wait_timeout,
)
from podium.gateway.body import BodyTooLarge, ClientGone, StreamedBody, read_body
from podium.gateway.headers import RequestHead, request_head
from podium.gateway.invocation import Invocation
from podium.gateway.metering import EndpointMeter, Meters
from podium.gateway.proxy import Proxy, Unreached
from podium.gateway.responses import Receive, Scope, Send, send_problem

log = logging.getLogger("podium.gateway")

# How long a request no replica could take waits for the controller to publish a new
# table: it is woken by the failure, and finds a dead replica in its first poll.
UNREACHED_WAIT_S = 1.0


class Stage(Protocol):
    """A step of every invocation, after its route is resolved (see the module docstring).

    `check` runs before the endpoint's own refusals and before the body is read (except
    under `/v1/`, whose route needs the body): a `Refusal` is sent instead of forwarding
    (as problem+json, or OpenAI's error body under `/v1/`), None lets the request go on.
    `finish` runs once per invocation whose `check` ran, after metering, with the status
    sent (0: the client left first) and the seconds it took; it must not raise.
    A stage that is also a `prometheus_client` `Collector` is registered in the gateway's
    metrics registry.
    """

    async def check(self, call: Invocation) -> Refusal | None: ...

    def finish(self, call: Invocation, status: int, seconds: float) -> None: ...


@runtime_checkable
class Authenticates(Protocol):
    """A stage that says who a request comes from before its route is resolved (the OpenAI
    router resolves `model` in the caller's projects and lists what the caller may invoke).

    `principal(scope)`: the caller; None when the request carries no credentials; a
    `Refusal` (401, or 403 for a session cookie without its CSRF token) when it carries bad
    ones. Cached in the scope, so the stage's own `check` does not authenticate twice."""

    def principal(self, scope: Scope) -> Principal | Refusal | None: ...


class Pipeline:
    """Runs an invocation from its resolved route to its metered end (module docstring)."""

    def __init__(
        self,
        settings: GatewaySettings,
        routing: RoutingSource,
        meters: Meters,
        activator: Activator,
        proxy: Proxy,
        stages: Sequence[Stage] = (),
    ) -> None:
        self._settings = settings
        self._routing = routing
        self._meters = meters
        self._activator = activator
        self._proxy = proxy
        self._stages = tuple(stages)

    def unrouted(self) -> None:
        """Count a request for a path or endpoint the gateway does not know (it answered)."""
        self._meters.unrouted += 1

    async def invoke(
        self,
        route: EndpointRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: str,
        body: bytes | None = None,
    ) -> int:
        """Serve a request for `route` at the replica path `target`; `body` when the route
        read it already, else it is read here. Returns the status sent (0: the client left).
        """
        meter = self._meters.get(route.name)
        meter.start()
        started = time.perf_counter()
        status = 0
        call: Invocation | None = None
        checked = 0  # stages whose `check` ran (raised or not): only they `finish`
        try:
            head = request_head(scope)
            bind_request(head.request_id)
            if self._stages:
                call = Invocation(route, scope, head, target, started)
                call.body = body  # read by the OpenAI router, or None: read below
                for stage in self._stages:
                    checked += 1
                    refusal = await stage.check(call)
                    if refusal is not None:
                        call.fail(_refusal_error(refusal))
                        await refusal.send(send, head.request_id)
                        status = refusal.status
                        return status
            status = await self._serve(route, meter, scope, receive, send, head, target, body, call)
            return status
        finally:
            seconds = time.perf_counter() - started
            meter.finish(status, seconds)
            if call is not None:
                self._finish(call, checked, status, seconds)

    async def admit_task(
        self,
        route: EndpointRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: str,
        enqueue: Callable[[Invocation, bytes], Awaitable[int]],
    ) -> int:
        """The enqueue call of an async task (`task_intake`): the stages every synchronous
        call passes (authentication, visibility, rate limits; the request record of the
        enqueue call itself), the endpoint's refusals (paused, failed), the body read whole
        and bounded (413); then `enqueue(call, body)` stores the task and answers (202).
        Returns the status sent. Not metered as an invocation of the endpoint (it reaches
        no replica): each run of the task is, when the dispatcher makes it."""
        started = time.perf_counter()
        status = 0
        head = request_head(scope)
        bind_request(head.request_id)
        call = Invocation(route, scope, head, target, started)
        checked = 0
        try:
            for stage in self._stages:
                checked += 1
                refusal = await stage.check(call)
                if refusal is not None:
                    call.fail(_refusal_error(refusal))
                    await refusal.send(send, head.request_id)
                    status = refusal.status
                    return status
            refusal = refusal_for(route)
            if refusal is not None:
                call.fail(_refusal_error(refusal))
                await refusal.send(send, head.request_id)
                status = refusal.status
                return status
            limit = self._settings.max_body_bytes
            try:
                body = await read_body(
                    receive, head.content_length, retry_bytes=limit, max_bytes=limit
                )
            except BodyTooLarge as e:
                call.fail(ErrorClass.TOO_LARGE)
                call.body = b""
                await send_problem(
                    send,
                    413,
                    f"request body is larger than the limit of {e.limit} bytes",
                    title=TooLarge.title,
                    request_id=head.request_id,
                    endpoint=route.name,
                    limit=e.limit,
                )
                status = 413
                return status
            except ClientGone:
                return 0
            if not isinstance(body, bytes):  # pragma: no cover - retry_bytes = max_bytes
                raise TypeError("a task's body is read whole")
            call.body = body
            status = await enqueue(call, body)
            return status
        finally:
            self._finish(call, checked, status, time.perf_counter() - started)

    def _finish(self, call: Invocation, checked: int, status: int, seconds: float) -> None:
        """`Stage.finish` of the stages that checked this call, in order; one that raises is
        logged and never keeps the others from finishing (a rate limit releases its slot)."""
        for stage in self._stages[:checked]:
            try:
                stage.finish(call, status, seconds)
            except Exception:
                log.exception("gateway stage %s failed to finish a request", type(stage).__name__)

    async def _serve(
        self,
        route: EndpointRoute,
        meter: EndpointMeter,
        scope: Scope,
        receive: Receive,
        send: Send,
        head: RequestHead,
        target: str,
        body: bytes | StreamedBody | None,
        call: Invocation | None,
    ) -> int:
        """Steps 3 to 6: refusals, the body, admission, forward."""
        refusal = refusal_for(route)  # paused; failed with nothing ready
        if refusal is not None:
            if call is not None:
                call.fail(_refusal_error(refusal))
            await refusal.send(send, head.request_id)
            return refusal.status
        if body is None:
            settings = self._settings
            try:
                body = await read_body(
                    receive,
                    head.content_length,
                    retry_bytes=settings.retry_body_bytes,
                    max_bytes=settings.max_body_bytes,
                )
            except BodyTooLarge as e:
                if call is not None:
                    call.fail(ErrorClass.TOO_LARGE)
                    call.body = b""  # not read: too large (its bytes are not counted)
                await send_problem(
                    send,
                    413,
                    f"request body is larger than the limit of {e.limit} bytes",
                    title=TooLarge.title,
                    request_id=head.request_id,
                    endpoint=route.name,
                    limit=e.limit,
                )
                return 413
            except ClientGone:
                return 0
        if call is not None:
            call.body = body
            if call.capture and isinstance(body, StreamedBody):
                body.captured, body.capture_limit = bytearray(), call.capture
        try:
            wait_s = wait_timeout(scope["headers"])
        except InvalidWaitTimeout as e:
            if call is not None:
                call.fail(ErrorClass.BAD_REQUEST)
            await send_problem(
                send,
                400,
                str(e),
                title="Invalid header",
                request_id=head.request_id,
                endpoint=route.name,
                header="X-Podium-Wait-Timeout",
            )
            return 400
        activator, routing = self._activator, self._routing
        name = route.name
        # A body read whole leaves `receive` free to notice the client leave while held.
        watch = receive if isinstance(body, bytes) else None
        second_try = False
        while True:
            table = routing.table
            route = table.endpoints.get(name, route)  # the newest, after the body
            # Fast path: every replica has a free slot when no more than max_concurrency of
            # the endpoint's requests (this one included) are in the gateway, nobody waits.
            limit = route.max_concurrency
            if not route.replicas or meter.in_flight > limit or name in activator.queues:
                if call is None:
                    admitted = await activator.admit(route, meter, wait_s, watch)
                else:
                    held = time.perf_counter()
                    admitted = await activator.admit(route, meter, wait_s, watch)
                    call.queue_s += time.perf_counter() - held
                if admitted is None:
                    return 0  # the client left while held
                if isinstance(admitted, Refusal):
                    if call is not None:
                        call.fail(_refusal_error(admitted))
                    await admitted.send(send, head.request_id)
                    return admitted.status
                route = admitted
            try:
                return await self._proxy.forward(
                    route,
                    meter,
                    scope["method"],
                    target,
                    head,
                    body,
                    receive,
                    send,
                    raise_unreached=not second_try,
                    call=call,
                )
            except Unreached:
                # Every replica it knew refused the connection (crashed, or stopping as the
                # table changed): wait for the controller's next table (it was woken by the
                # failure), then admit again; a second failure is the client's 502.
                second_try = True
                timeout = route.wait_timeout_s if wait_s is None else wait_s
                if call is None:
                    await activator.newer_table(table.version, min(timeout, UNREACHED_WAIT_S))
                else:
                    held = time.perf_counter()
                    await activator.newer_table(table.version, min(timeout, UNREACHED_WAIT_S))
                    call.queue_s += time.perf_counter() - held
            finally:
                activator.done(name)


# What a refusal without its own `error` is, by its status (a stage's own refusals).
_REFUSED = {
    400: ErrorClass.BAD_REQUEST,
    401: ErrorClass.UNAUTHENTICATED,
    403: ErrorClass.FORBIDDEN,
    413: ErrorClass.TOO_LARGE,
    429: ErrorClass.RATE_LIMITED,
    503: ErrorClass.QUEUE_FULL,
    504: ErrorClass.QUEUE_TIMEOUT,
}


def _refusal_error(refusal: Refusal) -> ErrorClass:
    if refusal.error is not None:
        return refusal.error
    return _REFUSED.get(refusal.status, ErrorClass.BAD_REQUEST)
