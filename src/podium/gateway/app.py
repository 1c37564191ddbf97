"""The gateway: a raw ASGI app routing `/endpoints/{name}/{path...}` to the endpoint's replicas.

It reads the routing table the controller publishes (never the database), picks a replica
(`balancer`), forwards the request and streams the answer back (`proxy`), and counts
(`metering`). Answers it makes itself are `application/problem+json`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from prometheus_client import CollectorRegistry

from podium.core.phases import EndpointStatus
from podium.core.routing import (
    EndpointLoad,
    EndpointRoute,
    GatewayView,
    RoutingTableHolder,
    Waker,
)
from podium.core.settings import GatewaySettings
from podium.gateway.balancer import Balancer
from podium.gateway.body import BodyTooLarge, ClientGone, read_body
from podium.gateway.headers import RequestHead, request_head
from podium.gateway.http1 import Http1Transport
from podium.gateway.metering import EndpointMeter, GatewayCollector, Meters
from podium.gateway.proxy import Proxy
from podium.gateway.responses import Receive, Scope, Send, send_problem
from podium.gateway.transport import Transport

PREFIX = "/endpoints/"


class Gateway:
    """ASGI app of the data plane. Implements `podium.core.routing.GatewayView`.

    The server that mounts it calls `startup()` / `shutdown()`; run on its own, it answers
    the ASGI lifespan messages itself. `on_replica_failure(replica_id, reason)` hears of
    each replica whose connection failed (it is ejected for `settings.eject_s`);
    `transport` replaces the default HTTP/1.1 client (`http1.Http1Transport`).
    """

    def __init__(
        self,
        holder: RoutingTableHolder,
        settings: GatewaySettings,
        *,
        wake: Waker | None = None,
        on_replica_failure: Callable[[str, str], None] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self._holder = holder
        self._settings = settings
        self._wake = wake
        self.balancer = Balancer(settings.eject_s)
        self._transport: Transport = transport or Http1Transport(settings)
        self._proxy = Proxy(
            settings, self.balancer, self._transport, on_replica_failure=on_replica_failure
        )
        self._meters = Meters()
        self.metrics_registry = CollectorRegistry(auto_describe=False)
        collector = GatewayCollector(self._meters, self.balancer.outstanding_all)
        self.metrics_registry.register(collector)

    # -- lifecycle ------------------------------------------------------------------------

    async def startup(self) -> None:
        """Open the upstream connection pool (within the serving event loop)."""
        await self._transport.start()

    async def shutdown(self) -> None:
        """Close the upstream connections."""
        await self._transport.close()

    # -- GatewayView and load -------------------------------------------------------------

    def outstanding(self, replica_id: str) -> int:
        """Requests in flight to this replica through this gateway."""
        return self.balancer.outstanding(replica_id)

    def load_snapshot(self) -> dict[str, EndpointLoad]:
        """Per endpoint: in flight now, requests and 5xx answers since start (held: 0
        until the activator exists)."""
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
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if not path.startswith(PREFIX):
            self._meters.unrouted += 1
            await send_problem(send, 404, "no such path; endpoints are under /endpoints/{name}/")
            return
        name, _, _ = path[len(PREFIX) :].partition("/")
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
        if route.status is EndpointStatus.PAUSED:
            await send_problem(
                send,
                503,
                f"endpoint {route.name!r} is paused; resume it with `podium resume {route.name}`",
                title="Endpoint paused",
                request_id=head.request_id,
                endpoint=route.name,
                endpoint_status="paused",
            )
            return 503
        if not route.replicas:
            return await self._no_ready_replica(route, meter, scope, receive, send, head)
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
                title="Request body too large",
                request_id=head.request_id,
                endpoint=route.name,
                limit=e.limit,
            )
            return 413
        except ClientGone:
            return 0
        return await self._proxy.forward(
            route, meter, scope["method"], _target(scope, route.name), head, body, receive, send
        )

    async def _no_ready_replica(
        self,
        route: EndpointRoute,
        meter: EndpointMeter,
        scope: Scope,
        receive: Receive,
        send: Send,
        head: RequestHead,
    ) -> int:
        """No replica to send to; returns the status sent.

        The activator goes here: hold the request, wake the controller, forward to the
        first ready replica (it has all it needs to call `self._proxy.forward`). For now
        the controller is woken and the client is asked to retry."""
        if self._wake is not None:
            self._wake(route.name)
        status = route.status.value
        await send_problem(
            send,
            503,
            f"endpoint {route.name!r} has no ready replica (status: {status}); retry shortly",
            title="No ready replica",
            request_id=head.request_id,
            headers=((b"retry-after", b"1"),),
            endpoint=route.name,
            endpoint_status=status,
        )
        return 503


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
