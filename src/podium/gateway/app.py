"""The gateway: a raw ASGI app routing `/endpoints/{name}/{path...}` to the endpoint's replicas.

It reads the routing table the controller publishes (never the database), takes a replica
slot or holds the request until one frees (`activator`), picks a replica (`balancer`),
forwards the request and streams the answer back (`proxy`), and counts (`metering`).
`/v1/…` is the OpenAI router (`openai_router`). Answers it makes itself are
`application/problem+json` (OpenAI's error body under `/v1/`).

A replica's own routes (`/metrics`, `/health/…`, `/podium/…`) are for Podium alone (probes,
scraping, the control API): the gateway answers 404 for them and never forwards them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from prometheus_client import CollectorRegistry

from podium.core.asgi import serve_lifespan
from podium.core.errors import TooLarge
from podium.core.routing import (
    EndpointLoad,
    EndpointRoute,
    GatewayView,
    RoutingTableHolder,
    Waker,
)
from podium.core.settings import GatewaySettings
from podium.gateway.activator import (
    Activator,
    InvalidWaitTimeout,
    Refusal,
    refusal_for,
    wait_timeout,
)
from podium.gateway.balancer import Balancer
from podium.gateway.body import BodyTooLarge, ClientGone, StreamedBody, read_body
from podium.gateway.headers import RequestHead, request_head
from podium.gateway.http1 import Http1Transport
from podium.gateway.metering import EndpointMeter, GatewayCollector, Meters
from podium.gateway.openai_router import PREFIX as OPENAI_PREFIX
from podium.gateway.openai_router import OpenAIRouter
from podium.gateway.proxy import Proxy, Unreached, WhyFailed
from podium.gateway.responses import Receive, Scope, Send, send_problem
from podium.gateway.transport import Transport

PREFIX = "/endpoints/"
# A replica's internal routes, as they follow `/endpoints/{name}/`: refused with 404. The
# check is a comparison and a `startswith` on a string the request split makes anyway.
INTERNAL_EXACT = "metrics"
INTERNAL_PREFIXES = ("health/", "podium/")
# How long a request no replica could take waits for the controller to publish a new
# table: it is woken by the failure, and finds a dead replica in its first poll.
UNREACHED_WAIT_S = 1.0


class Gateway:
    """ASGI app of the data plane. Implements `podium.core.routing.GatewayView`.

    The server that mounts it calls `startup()` / `shutdown()`; run on its own, it answers
    the ASGI lifespan messages itself. `on_replica_failure(replica_id, reason)` hears of
    each replica whose connection failed (it is ejected for `settings.eject_s`);
    `transport` replaces the default HTTP/1.1 client (`http1.Http1Transport`);
    `why_failed(replica_id)` says why a replica that died serving a request ended (for
    the 502), e.g. "ran out of memory".
    """

    def __init__(
        self,
        holder: RoutingTableHolder,
        settings: GatewaySettings,
        *,
        wake: Waker | None = None,
        on_replica_failure: Callable[[str, str], None] | None = None,
        transport: Transport | None = None,
        why_failed: WhyFailed | None = None,
    ) -> None:
        self._holder = holder
        self._settings = settings
        self._wake = wake
        self.balancer = Balancer(settings.eject_s)
        self._transport: Transport = transport or Http1Transport(settings)
        self._proxy = Proxy(
            settings,
            self.balancer,
            self._transport,
            on_replica_failure=on_replica_failure,
            why_failed=why_failed,
        )
        self._meters = Meters()
        self.activator = Activator(holder, self.balancer, wake)
        self._openai = OpenAIRouter(
            holder, settings.max_body_bytes, self._forward_openai, self._count_unrouted
        )
        self.metrics_registry = CollectorRegistry(auto_describe=False)
        collector = GatewayCollector(self._meters, self.balancer.outstanding_all)
        self.metrics_registry.register(collector)

    # -- lifecycle ------------------------------------------------------------------------

    async def startup(self) -> None:
        """Open the upstream connection pool (within the serving event loop)."""
        await self._transport.start()

    async def shutdown(self) -> None:
        """Answer held requests, close the upstream connections."""
        self.activator.close()
        await self._transport.close()

    # -- GatewayView and load -------------------------------------------------------------

    def outstanding(self, replica_id: str) -> int:
        """Requests in flight to this replica through this gateway."""
        return self.balancer.outstanding(replica_id)

    def load_snapshot(self) -> dict[str, EndpointLoad]:
        """Per endpoint: forwarded and held now, requests and 5xx answers since start."""
        return self._meters.snapshot()

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, self.startup, self.shutdown)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path.startswith(OPENAI_PREFIX):
            await self._openai(scope, path, receive, send)
            return
        if not path.startswith(PREFIX):
            self._meters.unrouted += 1
            await send_problem(send, 404, "no such path; endpoints are under /endpoints/{name}/")
            return
        name, _, sub = path[len(PREFIX) :].partition("/")
        if sub == INTERNAL_EXACT or sub.startswith(INTERNAL_PREFIXES):
            self._meters.unrouted += 1
            await send_problem(send, 404, f"no such path /{sub} on endpoint {name!r}")
            return
        route = self._holder.table.endpoints.get(name)
        if route is None:
            self._meters.unrouted += 1
            await send_problem(send, 404, f"endpoint {name!r} not found", endpoint=name)
            return
        meter = self._meters.get(name)
        meter.start()
        started = time.perf_counter()
        status = 0
        try:
            status = await self._route(route, meter, scope, receive, send)
        finally:
            meter.finish(status, time.perf_counter() - started)

    async def _route(
        self, route: EndpointRoute, meter: EndpointMeter, scope: Scope, receive: Receive, send: Send
    ) -> int:
        head = request_head(scope)
        refusal = refusal_for(route)  # paused; failed with nothing ready
        if refusal is not None:
            await refusal.send(send, head.request_id)
            return refusal.status
        settings = self._settings
        try:
            body = await read_body(
                receive,
                head.content_length,
                retry_bytes=settings.retry_body_bytes,
                max_bytes=settings.max_body_bytes,
            )
        except BodyTooLarge as e:
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
        target = _target(scope, route.name)
        return await self._serve(route, meter, scope, receive, send, head, body, target)

    async def _serve(
        self,
        route: EndpointRoute,
        meter: EndpointMeter,
        scope: Scope,
        receive: Receive,
        send: Send,
        head: RequestHead,
        body: bytes | StreamedBody,
        target: str,
    ) -> int:
        """Take a replica slot (or wait for one in the activator), then forward."""
        try:
            wait_s = wait_timeout(scope["headers"])
        except InvalidWaitTimeout as e:
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
        activator, holder = self.activator, self._holder
        name = route.name
        # A body read whole leaves `receive` free to notice the client leave while held.
        watch = receive if isinstance(body, bytes) else None
        second_try = False
        while True:
            table = holder.table
            route = table.endpoints.get(name, route)  # the newest, after the body
            # Fast path: every replica has a free slot when no more than max_concurrency of
            # the endpoint's requests (this one included) are in the gateway, nobody waits.
            limit = route.max_concurrency
            if not route.replicas or meter.in_flight > limit or name in activator.queues:
                admitted = await activator.admit(route, meter, wait_s, watch)
                if admitted is None:
                    return 0  # the client left while held
                if isinstance(admitted, Refusal):
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
                )
            except Unreached:
                # Every replica it knew refused the connection (crashed, or stopping as the
                # table changed): wait for the controller's next table (it was woken by the
                # failure), then admit again; a second failure is the client's 502.
                second_try = True
                timeout = route.wait_timeout_s if wait_s is None else wait_s
                await activator.newer_table(table.version, min(timeout, UNREACHED_WAIT_S))
            finally:
                activator.done(name)

    # -- the OpenAI router ----------------------------------------------------------------

    async def _forward_openai(
        self,
        route: EndpointRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        target: str,
    ) -> int:
        """A request the OpenAI router resolved to an endpoint (`body` already read)."""
        meter = self._meters.get(route.name)
        meter.start()
        started = time.perf_counter()
        status = 0
        try:
            head = request_head(scope)
            refusal = refusal_for(route)
            if refusal is not None:
                await refusal.send(send, head.request_id)
                status = refusal.status
            else:
                status = await self._serve(route, meter, scope, receive, send, head, body, target)
        finally:
            meter.finish(status, time.perf_counter() - started)
        return status

    def _count_unrouted(self) -> None:
        self._meters.unrouted += 1


def _target(scope: Scope, name: str) -> str:
    """The replica's path and query: what follows `/endpoints/{name}`, as the client sent it."""
    raw: bytes | None = scope.get("raw_path")
    if raw:
        text = raw.decode("latin-1")
        i = text.find(PREFIX)
        rest = text[i + len(PREFIX) :] if i >= 0 else ""
        _, slash, sub = rest.partition("/")
        path = "/" + sub if slash else "/"
    else:
        _, slash, sub = scope["path"].partition(PREFIX)[2].partition("/")
        path = quote("/" + sub if slash else "/", safe="/:@!$&'()*+,;=-._~")
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _as_view(gateway: Gateway) -> GatewayView:  # mypy: the gateway is a GatewayView
    return gateway
