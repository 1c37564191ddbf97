"""The replica's ASGI app: health, info, metrics and the wire protocols of one runtime.

    GET  /health/live[?hung_after_s=N]  /health/ready  /podium/info  /metrics
    POST /                     Hugging Face style, TGI text generation    (routes_hf)
    /v1/...                    OpenAI: generative and embedding runtimes   (routes_openai)
    /v2/...                    Open Inference Protocol v2: tensor runtimes (routes_v2)

Raw ASGI, no framework: this is the hot path. Predictions run in a pool of
`max_concurrency` worker threads, so the event loop only moves bytes and answers probes
while models compute; streams cross from their worker thread through a queue
(`streaming`). The `Limiter` admits requests; a client that disconnects while queued gives
its place up, and one that leaves a stream stops its generation.

`/health/live` reports how long the oldest call into the runtime has run without progress
(`watch`); given `hung_after_s` (the controller sends the endpoint's timeout plus a grace)
it answers 503 "hung" once that call has run longer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

from podium.core.errors import Invalid, NotFound
from podium.core.log_context import bind_request
from podium.replica.batching import BatchConfig, Batcher
from podium.replica.context import ReplicaInfo, Serving
from podium.replica.http import PROBLEM, Receive, Scope, Send, problem
from podium.replica.routes_hf import HfRoute
from podium.replica.routes_openai import OpenAIRoutes
from podium.replica.routes_v2 import V2Routes
from podium.runtimes.base import Runtime

__all__ = ["BatchConfig", "ReplicaApp", "ReplicaInfo", "create_app"]

log = logging.getLogger("podium.replica")
MAX_REQUEST_ID = 128  # the gateway's limit too


class ReplicaApp:
    """ASGI app serving one loaded runtime. Call `close()` after the server stopped."""

    def __init__(
        self,
        runtime: Runtime,
        info: ReplicaInfo,
        *,
        max_concurrency: int = 8,
        max_queue: int = 64,
        batching: BatchConfig | None = None,
    ) -> None:
        self.serving = s = Serving(
            runtime, info, max_concurrency=max_concurrency, max_queue=max_queue
        )
        self.runtime = runtime
        self.info = info
        self.limiter = s.limiter
        self.metrics = s.metrics
        self.http = s.http
        self.batcher: Batcher | None = None
        if batching is not None and runtime.capabilities.batch:
            if batching.max_batch_size > max_concurrency:
                log.warning(
                    "max_batch_size %d is above max_concurrency %d: batches hold at most %d",
                    batching.max_batch_size,
                    max_concurrency,
                    max_concurrency,
                )
            self.batcher = Batcher(
                s.pool,
                runtime.predict_batch,
                runtime.predict,
                batching,
                on_batch=s.metrics.observe_batch,
            )
        self.hf = HfRoute(s, self.batcher)
        self.v2 = V2Routes(s)
        self.openai = OpenAIRoutes(s)
        self._get: dict[str, Callable[[Scope, Send], Awaitable[None]]] = {
            "/health/live": self._live,
            "/health/ready": self._ready,
            "/podium/info": self._info,
            "/metrics": self._metrics,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await _lifespan(receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        # This request's task (uvicorn runs one per request) logs with the gateway's id.
        bind_request(request_id(scope))
        if path == "/":
            if method == "POST":
                await self.hf(receive, send)
            else:
                await self._not_allowed(send, "POST")
            return
        handler = self._get.get(path)
        if handler is not None:
            if method in ("GET", "HEAD"):
                await handler(scope, send)
            else:
                await self._not_allowed(send, "GET")
            return
        if path.startswith("/v1/"):
            await self.openai(method, path, receive, send)
        elif path == "/v2" or path.startswith("/v2/"):
            await self.v2(scope, receive, send)
        else:
            await self.http.problem(send, NotFound(f"no route {path}"))

    def close(self) -> None:
        """Wait for running predictions, then release the runtime."""
        self.serving.close()

    # ------------------------------------------------------------------ probes and info

    def _healthy(self) -> bool:
        try:
            return self.runtime.health()
        except Exception:
            log.exception("health check of the %s runtime failed", self.info.runtime)
            return False

    async def _live(self, scope: Scope, send: Send) -> None:
        try:
            limit = _hung_after(scope)
        except Invalid as e:
            await self.http.problem(send, e)
            return
        pool = self.serving.pool
        stalled = round(pool.stalled_s(), 3)
        figures = {"running_calls": pool.running(), "oldest_call_s": stalled}
        if limit is None or stalled <= limit:
            await self.http.json(send, 200, {"status": "live", **figures})
            return
        detail = (
            f"hung: the oldest call into the {self.info.runtime} runtime has run for "
            f"{stalled:.1f} s without finishing (limit {limit:g} s)"
        )
        extra = {"hung": True, "limit_s": limit, **figures}
        await self.http.send(send, 503, problem(503, detail, title="Hung", extra=extra), PROBLEM)

    async def _ready(self, _scope: Scope, send: Send) -> None:
        if self._healthy():
            await self.http.json(send, 200, {"status": "ready", "replica_id": self.info.replica_id})
        else:
            body = problem(503, "the runtime reports it is not healthy", title="Not Ready")
            await self.http.send(send, 503, body, PROBLEM)

    async def _info(self, _scope: Scope, send: Send) -> None:
        doc: dict[str, Any] = asdict(self.info)
        doc["capabilities"] = asdict(self.runtime.capabilities)
        limiter = self.limiter
        doc["load"] = {
            "in_flight": limiter.in_flight,
            "queued": limiter.queued,
            "max_in_flight": limiter.max_in_flight,  # high-water marks since it started
            "max_queued": limiter.max_queued,
        }
        batcher = self.batcher
        doc["batching"] = (
            None
            if batcher is None
            else {
                "max_batch_size": batcher.config.max_batch_size,
                "max_wait_ms": batcher.config.max_wait_ms,
            }
        )
        await self.http.json(send, 200, doc)

    async def _metrics(self, _scope: Scope, send: Send) -> None:
        await self.http.send(send, 200, self.metrics.render(), self.metrics.content_type.encode())

    async def _not_allowed(self, send: Send, allow: str) -> None:
        body = problem(405, f"use {allow}")
        await self.http.send(send, 405, body, PROBLEM, [(b"allow", allow.encode())])


def request_id(scope: Scope) -> str:
    """The request's `X-Request-ID` (the gateway sets one on every request it forwards),
    "-" when there is none or it is not a short printable token (it goes into log lines)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if 0 < len(value) <= MAX_REQUEST_ID and all(0x21 <= b <= 0x7E for b in value):
                return str(value.decode("ascii"))
            return "-"
    return "-"


def _hung_after(scope: Scope) -> float | None:
    """The `hung_after_s` query parameter: seconds a call may run (None: not asked)."""
    raw = scope.get("query_string", b"")
    if not raw:
        return None
    values = parse_qs(raw.decode("latin-1")).get("hung_after_s")
    if not values:
        return None
    try:
        limit = float(values[0])
    except ValueError:
        limit = -1.0
    if not 0 < limit <= 86_400:
        raise Invalid(
            "hung_after_s must be a number of seconds in (0, 86400]", field="hung_after_s"
        )
    return limit


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    runtime: Runtime,
    info: ReplicaInfo,
    *,
    max_concurrency: int = 8,
    max_queue: int = 64,
    batching: BatchConfig | None = None,
) -> ReplicaApp:
    """The app for a runtime that has already loaded its model."""
    return ReplicaApp(
        runtime, info, max_concurrency=max_concurrency, max_queue=max_queue, batching=batching
    )
