"""What every route of a replica shares: the runtime, admission, the worker pool, metrics.

`Serving.handle` runs one prediction request: it sends whatever the route answers, turns
errors into the route's error body, and records the request in the metrics. `slot` admits
a request (at most `max_concurrency` in flight, `max_queue` waiting); a client that leaves
while queued gives its place up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TypeVar

from podium.core.errors import OutOfMemory, PodiumError
from podium.replica import memory
from podium.replica.concurrency import Limiter
from podium.replica.http import ClientGone, Receive, Responder, Send, wait_disconnect
from podium.replica.instruments import ReplicaMetrics
from podium.replica.watch import WatchedPool
from podium.runtimes.base import Runtime

log = logging.getLogger("podium.replica")

T = TypeVar("T")
ErrorRenderer = Callable[[Send, PodiumError], Awaitable[int]]  # returns the status sent
MAX_DETAIL = 300


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    replica_id: str
    endpoint: str
    revision: int
    runtime: str
    pid: int
    model_version: str | None = None  # the model's version ("3" of iris:3), not the revision


class Serving:
    def __init__(
        self, runtime: Runtime, info: ReplicaInfo, *, max_concurrency: int, max_queue: int
    ) -> None:
        self.runtime = runtime
        self.info = info
        self.limiter = Limiter(max_concurrency, max_queue)
        self.metrics = ReplicaMetrics(self.limiter)
        self.pool = WatchedPool(max_concurrency, thread_name_prefix="predict")
        self.http = Responder(info.replica_id)
        # Told once a request ran out of memory (main: record it, then stop gracefully).
        self.on_out_of_memory: Callable[[str], None] | None = None

    def stream_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers of a streamed answer beyond the stream's own (the replica's id)."""
        return [(b"x-podium-replica", self.info.replica_id.encode())]

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in the worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def handle(
        self, protocol: str, send: Send, answer: Callable[[], Awaitable[int]], render: ErrorRenderer
    ) -> None:
        """Run `answer()` (which sends the response and returns its status) and count it."""
        started = perf_counter()
        try:
            status = await answer()
        except ClientGone:
            status = 499
        except PodiumError as e:
            status = await render(send, e)
        except MemoryError as e:  # the kernel refused an allocation: over the limit
            log.error("out of memory in the %s runtime: %r", self.info.runtime, e)
            error = OutOfMemory(memory.describe(memory.limit_mb()))
            status = await render(send, error)
            if self.on_out_of_memory is not None:
                self.on_out_of_memory(error.message)
        except Exception as e:
            log.exception("prediction failed in the %s runtime", self.info.runtime)
            status = await render(send, self.internal_error(e))
        self.metrics.observe(protocol, status, perf_counter() - started)

    def internal_error(self, e: BaseException) -> PodiumError:
        detail = f"{type(e).__name__}: {e}"
        if len(detail) > MAX_DETAIL:
            detail = detail[: MAX_DETAIL - 3] + "..."
        return PodiumError(f"the {self.info.runtime} runtime failed: {detail}")

    @asynccontextmanager
    async def slot(self, receive: Receive) -> AsyncIterator[None]:
        """Hold a prediction slot; ClientGone if the client leaves while queued."""
        await self._enter(receive)
        try:
            yield
        finally:
            self.limiter.release()

    async def _enter(self, receive: Receive) -> None:
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

    def close(self) -> None:
        """Wait for running predictions, then release the runtime."""
        self.pool.shutdown(wait=True)
        self.runtime.close()
