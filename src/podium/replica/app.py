"""The replica's ASGI app: health, info, metrics and the wire protocols of one runtime.

    GET  /health/live  /health/ready  /podium/info  /metrics
    POST /                                   Hugging Face style predict (every runtime)
    GET  /v2  /v2/health/live  /v2/health/ready          Open Inference Protocol v2,
    GET  /v2/models/{m}[/versions/{v}]  …/ready          only for tensor runtimes;
    POST /v2/models/{m}[/versions/{v}]/infer             {m} is the endpoint name

Raw ASGI, no framework: this is the hot path. Request bodies are decoded, predicted and
encoded in a worker thread (a pool of `max_concurrency` threads), so the event loop only
moves bytes and answers probes while models compute. The `Limiter` admits requests; a
client that disconnects while queued gives its place up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from time import perf_counter
from typing import Any

from podium import __version__
from podium.core.errors import NotFound, PodiumError
from podium.protocols import hf, oip_v2
from podium.replica.concurrency import Limiter
from podium.replica.http import (
    PROBLEM,
    ClientGone,
    Receive,
    Responder,
    Scope,
    Send,
    dumps,
    problem,
    read_body,
    status_of,
    wait_disconnect,
)
from podium.replica.metrics import ReplicaMetrics
from podium.runtimes.base import Runtime

log = logging.getLogger("podium.replica")

V2_MODELS = "/v2/models/"


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    replica_id: str
    endpoint: str
    revision: int
    runtime: str
    pid: int


class ReplicaApp:
    """ASGI app serving one loaded runtime. Call `close()` after the server stopped."""

    def __init__(
        self, runtime: Runtime, info: ReplicaInfo, *, max_concurrency: int = 8, max_queue: int = 64
    ) -> None:
        self.runtime = runtime
        self.info = info
        self.limiter = Limiter(max_concurrency, max_queue)
        self.metrics = ReplicaMetrics(self.limiter)
        self.pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="predict")
        self.http = Responder(info.replica_id)
        self.tensor = runtime.capabilities.tensor
        self.metadata = runtime.v2_metadata() if self.tensor else None
        self._get: dict[str, Callable[[Send], Awaitable[None]]] = {
            "/health/live": self._live,
            "/health/ready": self._ready,
            "/podium/info": self._info,
            "/metrics": self._metrics,
        }
        if self.tensor:
            self._get |= {
                "/v2": self._v2_server,
                "/v2/health/live": self._v2_live,
                "/v2/health/ready": self._v2_ready,
            }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await _lifespan(receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if path == "/":
            if method == "POST":
                await self._run("hf", receive, send, self._hf_work, self.http.problem)
            else:
                await self._not_allowed(send, "POST")
            return
        handler = self._get.get(path)
        if handler is not None:
            if method in ("GET", "HEAD"):
                await handler(send)
            else:
                await self._not_allowed(send, "GET")
            return
        if path.startswith(V2_MODELS):
            await self._v2_model(method, path, receive, send)
            return
        if path.startswith("/v2"):
            await self.http.v2_error(send, NotFound(self._no_v2_reason(path)))
            return
        await self.http.problem(send, NotFound(f"no route {path}"))

    def close(self) -> None:
        """Wait for running predictions, then release the runtime."""
        self.pool.shutdown(wait=True)
        self.runtime.close()

    # ------------------------------------------------------------------ predictions

    async def _run(
        self,
        protocol: str,
        receive: Receive,
        send: Send,
        work: Callable[[bytes], bytes],
        render_error: Callable[[Send, PodiumError], Awaitable[None]],
    ) -> None:
        started = perf_counter()
        status = 200
        try:
            body = await read_body(receive)
            await self._enter(receive)
            try:
                payload = await asyncio.get_running_loop().run_in_executor(self.pool, work, body)
            finally:
                self.limiter.release()
        except ClientGone:
            status = 499
        except PodiumError as e:
            status = status_of(e)
            await render_error(send, e)
        except Exception as e:
            log.exception("prediction failed in the %s runtime", self.info.runtime)
            status = 500
            detail = f"{type(e).__name__}: {e}"
            if len(detail) > 300:
                detail = detail[:297] + "..."
            await render_error(
                send, PodiumError(f"the {self.info.runtime} runtime failed: {detail}")
            )
        else:
            await self.http.send(send, 200, payload)
        self.metrics.observe(protocol, status, perf_counter() - started)

    async def _enter(self, receive: Receive) -> None:
        """Take a prediction slot; ClientGone if the client leaves while queued."""
        if self.limiter.try_acquire():
            return
        self.limiter.check_room()
        acquire = asyncio.ensure_future(self.limiter.acquire())
        gone = asyncio.ensure_future(wait_disconnect(receive))
        try:
            await asyncio.wait({acquire, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            gone.cancel()
            await self._abandon(acquire)
            raise
        gone.cancel()
        if acquire.done():
            acquire.result()  # re-raises Retryable
            return
        await self._abandon(acquire)
        raise ClientGone

    async def _abandon(self, acquire: asyncio.Future[None]) -> None:
        """Cancel a pending acquire; a slot granted meanwhile goes back."""
        acquire.cancel()
        try:
            await acquire
        except (asyncio.CancelledError, PodiumError):
            return
        self.limiter.release()

    def _hf_work(self, body: bytes) -> bytes:
        request = hf.decode_request(body)
        return hf.encode_response(self.runtime.predict(request.inputs, request.parameters))

    def _v2_work(self, body: bytes) -> bytes:
        request = oip_v2.decode_infer_request(body, self.metadata)
        wanted = frozenset(request.outputs) if request.outputs is not None else None
        outputs = self.runtime.infer(request.inputs, request.parameters, wanted)
        doc = oip_v2.encode_infer_response(
            outputs,
            model_name=self.info.endpoint,
            model_version=str(self.info.revision),
            request=request,
        )
        return dumps(doc)

    # ------------------------------------------------------------------ probes and info

    def _healthy(self) -> bool:
        try:
            return self.runtime.health()
        except Exception:
            log.exception("health check of the %s runtime failed", self.info.runtime)
            return False

    async def _live(self, send: Send) -> None:
        await self.http.json(send, 200, {"status": "live"})

    async def _ready(self, send: Send) -> None:
        if self._healthy():
            await self.http.json(send, 200, {"status": "ready", "replica_id": self.info.replica_id})
        else:
            body = problem(503, "the runtime reports it is not healthy", title="Not Ready")
            await self.http.send(send, 503, body, PROBLEM)

    async def _info(self, send: Send) -> None:
        doc: dict[str, Any] = asdict(self.info)
        doc["capabilities"] = asdict(self.runtime.capabilities)
        await self.http.json(send, 200, doc)

    async def _metrics(self, send: Send) -> None:
        await self.http.send(send, 200, self.metrics.render(), self.metrics.content_type.encode())

    async def _not_allowed(self, send: Send, allow: str) -> None:
        body = problem(405, f"use {allow}")
        await self.http.send(send, 405, body, PROBLEM, [(b"allow", allow.encode())])

    # ------------------------------------------------------------------ Open Inference v2

    def _no_v2_reason(self, path: str) -> str:
        if not self.tensor:
            return f"the {self.info.runtime} runtime does not serve the Open Inference Protocol v2"
        return f"no route {path}"

    async def _v2_server(self, send: Send) -> None:
        await self.http.json(send, 200, oip_v2.server_metadata(__version__))

    async def _v2_live(self, send: Send) -> None:
        await self.http.json(send, 200, {"live": True})

    async def _v2_ready(self, send: Send) -> None:
        ready = self._healthy()
        await self.http.json(send, 200 if ready else 503, {"ready": ready})

    async def _v2_model(self, method: str, path: str, receive: Receive, send: Send) -> None:
        if self.metadata is None:
            await self.http.v2_error(send, NotFound(self._no_v2_reason(path)))
            return
        name, *rest = path[len(V2_MODELS) :].split("/")
        if len(rest) >= 2 and rest[0] == "versions":
            rest = rest[2:]  # any version: a replica serves exactly one revision
        if name != self.info.endpoint:
            await self.http.v2_error(send, NotFound(f"model {name!r} not found"))
            return
        action = "/".join(rest)
        want = {"": "GET", "ready": "GET", "infer": "POST"}.get(action)
        if want is None:
            await self.http.v2_error(send, NotFound(f"no route {path}"))
        elif method != want and not (want == "GET" and method == "HEAD"):
            body = dumps(oip_v2.error(f"use {want}"))
            await self.http.send(send, 405, body, headers=[(b"allow", want.encode())])
        elif action == "infer":
            await self._run("v2", receive, send, self._v2_work, self.http.v2_error)
        elif action == "ready":
            ready = self._healthy()
            doc = {"name": name, "ready": ready}
            await self.http.json(send, 200 if ready else 503, doc)
        else:
            meta = oip_v2.model_metadata(self.metadata, str(self.info.revision))
            await self.http.json(send, 200, meta)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    runtime: Runtime, info: ReplicaInfo, *, max_concurrency: int = 8, max_queue: int = 64
) -> ReplicaApp:
    """The app for a runtime that has already loaded its model."""
    return ReplicaApp(runtime, info, max_concurrency=max_concurrency, max_queue=max_queue)
