"""The gateway: a raw ASGI app routing `/endpoints/{name}/{path...}` (an endpoint of the
`default` project) and `/p/{project}/endpoints/{name}/{path...}` (of any project) to the
endpoint's replicas.

It reads the routing table the controller publishes (never the database, through a
`RoutingSource`) and resolves the request's endpoint; from there `pipeline` serves it: it
counts (`metering`), takes a replica slot or holds the request until one frees
(`activator`), picks a replica (`balancer`), forwards the request and streams the answer
back (`proxy`). `/v1/…` is the OpenAI router (`openai_router`), which hands its requests
to the same pipeline. Answers it makes itself are
`application/problem+json` (OpenAI's error body under `/v1/`).

A replica's own routes (`/metrics`, `/health/…`, `/podium/…`) are for Podium alone (probes,
scraping, the control API): the gateway answers 404 for them and never forwards them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable
from urllib.parse import quote, unquote

from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from podium.core.access import PROJECT_SEPARATOR, endpoint_key
from podium.core.asgi import serve_lifespan
from podium.core.replica_paths import internal as _internal
from podium.core.request_record import RecordBuffer
from podium.core.routing import EndpointLoad, GatewayView, RoutingSource, Waker
from podium.core.service_counts import ServiceSnapshot
from podium.core.settings import GatewaySettings, TaskSettings
from podium.gateway.activator import Activator
from podium.gateway.balancer import Balancer
from podium.gateway.http1 import Http1Transport
from podium.gateway.metering import GatewayCollector, Meters
from podium.gateway.openai_router import PREFIX as OPENAI_PREFIX
from podium.gateway.openai_router import ROUTES as OPENAI_ROUTES
from podium.gateway.openai_router import OpenAIRouter
from podium.gateway.pipeline import Authenticates, Pipeline, Stage
from podium.gateway.proxy import Proxy, WhyFailed
from podium.gateway.recording import RecordStage
from podium.gateway.responses import Receive, Scope, Send, send_problem
from podium.gateway.task_intake import ASYNC, TaskIntake
from podium.gateway.task_store import TaskStore
from podium.gateway.transport import Transport

PREFIX = "/endpoints/"
PROJECT_PREFIX = "/p/"
# Every route the gateway serves, as patterns (the gateway's auth matrix test covers each).
ROUTES = (
    PREFIX + "{name}/{path}",
    PROJECT_PREFIX + "{project}" + PREFIX + "{name}/{path}",
    PREFIX + "{name}/async/{path}",
    PROJECT_PREFIX + "{project}" + PREFIX + "{name}/async/{path}",
    *OPENAI_ROUTES,
)
# A replica's internal routes (`core.replica_paths`), as they follow `/endpoints/{name}/`,
# are refused with 404. The check is a comparison and a `startswith` on a string the request
# split makes anyway (and a normalisation only for paths with empty or dot segments).


@runtime_checkable
class _Collects(Collector, Protocol):
    """A stage with Prometheus metrics of its own (registered with the gateway's)."""


class Gateway:
    """ASGI app of the data plane. Implements `podium.core.routing.GatewayView`.

    The server that mounts it calls `startup()` / `shutdown()`; run on its own, it answers
    the ASGI lifespan messages itself. `on_replica_failure(replica_id, reason)` hears of
    each replica whose connection failed (it is ejected for `settings.eject_s`);
    `transport` replaces the default HTTP/1.1 client (`http1.Http1Transport`);
    `why_failed(replica_id)` says why a replica that died serving a request ended (for
    the 502), e.g. "ran out of memory". `stages` run in every invocation, both routes
    alike (`pipeline.Stage`: authentication, rate limits). With `records` (the server's
    `RecordBuffer`), a `recording.RecordStage` runs first, before the given stages, so
    their refusals (401, 403, 429) are recorded too. `registry` is where the gateway's
    Prometheus collectors go (the server's one registry); without it, a registry of its
    own. Either way it is `metrics_registry`. With `tasks` (the queue's `TaskStore`) the
    async route `…/endpoints/{name}/async/{path}` stores tasks (`task_intake`); without,
    it answers 404. `pipeline` is what the task dispatcher runs tasks through.

    Its routes only resolve the endpoint and the replica path; `pipeline.Pipeline` does
    the rest (metering, stages, refusals, admission, forwarding).
    """

    def __init__(
        self,
        routing: RoutingSource,
        settings: GatewaySettings,
        *,
        wake: Waker | None = None,
        on_replica_failure: Callable[[str, str], None] | None = None,
        transport: Transport | None = None,
        why_failed: WhyFailed | None = None,
        stages: Sequence[Stage] = (),
        records: RecordBuffer | None = None,
        registry: CollectorRegistry | None = None,
        tasks: TaskStore | None = None,
        task_settings: TaskSettings | None = None,
    ) -> None:
        self._routing = routing
        self.balancer = Balancer(settings.eject_s)
        self._transport: Transport = transport or Http1Transport(settings)
        self._meters = Meters()
        proxy = Proxy(
            settings,
            self.balancer,
            self._transport,
            meters=self._meters,
            on_replica_failure=on_replica_failure,
            why_failed=why_failed,
        )
        if records is not None:
            stages = (RecordStage(records), *stages)
        self.activator = Activator(routing, self.balancer, wake)
        self._pipeline = Pipeline(settings, routing, self._meters, self.activator, proxy, stages)
        self.pipeline = self._pipeline
        self.task_intake = (
            None
            if tasks is None
            else TaskIntake(self._pipeline, tasks, task_settings or TaskSettings())
        )
        auth = next((s for s in stages if isinstance(s, Authenticates)), None)
        self._openai = OpenAIRouter(routing, settings.max_body_bytes, self._pipeline, auth)
        self.metrics_registry = (
            registry if registry is not None else CollectorRegistry(auto_describe=False)
        )
        collector = GatewayCollector(self._meters, self.balancer.outstanding_all)
        self.metrics_registry.register(collector)
        for stage in stages:
            if isinstance(stage, _Collects):
                self.metrics_registry.register(stage)

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

    def outstanding_all(self) -> Mapping[str, int]:
        """Requests in flight per replica through this gateway (a copy; any thread may ask:
        the load report of `coordination.loads` sends it to the controller)."""
        return self.balancer.outstanding_all()

    def load_snapshot(self) -> dict[str, EndpointLoad]:
        """Per endpoint: forwarded and held now, requests and 5xx answers since start."""
        return self._meters.snapshot()

    def service_snapshot(self) -> ServiceSnapshot:
        """Cumulative counts per endpoint and per replica since the gateway started (any
        thread may ask). A replica out of the routing table is forgotten a while after it
        left (`metering.Meters.service_snapshot`)."""
        table = self._routing.table
        routed = {r.replica_id for route in table.endpoints.values() for r in route.replicas}
        return self._meters.service_snapshot(routed, time.time(), time.monotonic())

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
        else:
            root = ""
        if path.startswith(OPENAI_PREFIX):
            await self._openai(scope, path, receive, send)
            return
        if path.startswith(PREFIX):
            prefix, project = PREFIX, ""
        elif path.startswith(PROJECT_PREFIX):
            project = path[len(PROJECT_PREFIX) :].partition("/")[0]
            prefix = f"{PROJECT_PREFIX}{project}{PREFIX}"
            if not project or not path.startswith(prefix):
                await self._no_path(send)
                return
        else:
            await self._no_path(send)
            return
        name, _, sub = path[len(prefix) :].partition("/")
        if sub.startswith(ASYNC):
            await self._async(scope, send, receive, root + prefix + name, project, name, sub)
            return
        if _internal(sub):
            await self._internal(send, sub, name)
            return
        key = endpoint_key(project, name) if project else name
        # A key (`project.name`) is not a name: `/endpoints/team.iris/` is no endpoint.
        if PROJECT_SEPARATOR in name or PROJECT_SEPARATOR in project:
            route = None
        else:
            route = self._routing.table.endpoints.get(key)
        if route is None:
            self._pipeline.unrouted()
            where = f" in project {project!r}" if project else ""
            await send_problem(send, 404, f"endpoint {name!r} not found{where}", endpoint=name)
            return
        target = _target(scope, root + prefix + name)
        # Again on what is forwarded, as the replica will decode it: never an internal route
        # (without a `%` the forwarded path is `/{sub}`, checked above).
        if "%" in target and _internal(unquote(target.partition("?")[0])[1:]):
            await self._internal(send, sub, name)
            return
        await self._pipeline.invoke(route, scope, receive, send, target)

    async def _async(
        self,
        scope: Scope,
        send: Send,
        receive: Receive,
        head: str,
        project: str,
        name: str,
        sub: str,
    ) -> None:
        """`…/endpoints/{name}/async/{path}`: the call becomes a task (`task_intake`)."""
        sub = sub[len(ASYNC) :]
        route = None
        if not (_internal(sub) or PROJECT_SEPARATOR in name or PROJECT_SEPARATOR in project):
            key = endpoint_key(project, name) if project else name
            route = self._routing.table.endpoints.get(key)
        target = _target(scope, head + "/async") if route is not None else ""
        if "%" in target and _internal(unquote(target.partition("?")[0])[1:]):
            route = None
        if route is None or self.task_intake is None:
            self._pipeline.unrouted()
            why = "" if self.task_intake is not None else " (async tasks are off)"
            await send_problem(send, 404, f"endpoint {name!r} not found{why}", endpoint=name)
            return
        await self.task_intake(route, scope, receive, send, target)

    async def _internal(self, send: Send, sub: str, name: str) -> None:
        self._pipeline.unrouted()
        await send_problem(send, 404, f"no such path /{sub} on endpoint {name!r}")

    async def _no_path(self, send: Send) -> None:
        self._pipeline.unrouted()
        await send_problem(
            send,
            404,
            "no such path; endpoints are under /endpoints/{name}/ (project default) and "
            "/p/{project}/endpoints/{name}/",
        )


def _target(scope: Scope, head: str) -> str:
    """The replica's path and query: what follows `head` (the decoded `{root}/endpoints/{name}`
    or `{root}/p/{project}/endpoints/{name}`), as the client sent it.

    The raw path is cut after as many segments as `head` has, and only when those decode to
    `head` exactly; else (a `%2F` among them, no raw path) the decoded rest is re-encoded. So
    a percent-encoded prefix cannot move the cut onto a later look-alike of `head`."""
    path: str | None = None
    raw: bytes | None = scope.get("raw_path")
    if raw and b"%" not in raw:  # the usual case: the raw path is the decoded one
        text = raw.decode("latin-1")
        if text.startswith(head):
            path = text[len(head) :] or "/"
    elif raw:
        text = raw.decode("latin-1")
        cut = -1
        for _ in range(head.count("/") + 1):  # the slash after `head`'s last segment
            cut = text.find("/", cut + 1)
            if cut < 0:
                cut = len(text)
                break
        if unquote(text[:cut]) == head:
            path = text[cut:] or "/"
    if path is None:
        sub = scope["path"][len(head) :]
        path = quote(sub, safe="/:@!$&'()*+,;=-._~") if sub.startswith("/") else "/"
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _as_view(gateway: Gateway) -> GatewayView:  # mypy: the gateway is a GatewayView
    return gateway
