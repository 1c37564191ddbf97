"""Streams: a runtime's iterator runs in a worker thread, its items reach the event loop
through a queue and go out as server-sent events as soon as they exist (never buffered).

The response starts only once the first item (or the first error) is known, so a request
the runtime refuses at once (a prompt too long) still gets a plain error status. While a
stream runs, the client's connection is watched: when it goes away, `cancelled` is set,
the worker stops pulling from the runtime's iterator and closes it, and the stream ends
(its caller then frees the request's slot, once the worker thread is done).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from typing import Any, Protocol

from podium.replica.http import ClientGone, Receive, Send, wait_disconnect
from podium.replica.watch import WatchedPool

log = logging.getLogger("podium.replica")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell buffering proxies (nginx) to pass chunks on
]


class _End:
    pass


END = _End()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class WorkerStream:
    """`produce()` called and iterated in a worker thread; `next()` on the event loop."""

    def __init__(
        self, pool: Executor, produce: Callable[[], Iterable[Any]], cancelled: threading.Event
    ) -> None:
        self.cancelled = cancelled
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        # each item is progress: a flowing stream is not a hung call (`watch`)
        self._progress = pool.progress if isinstance(pool, WatchedPool) else None
        self.done = self._loop.run_in_executor(pool, self._pump, produce)

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _pump(self, produce: Callable[[], Iterable[Any]]) -> None:
        iterator: Any = None
        try:
            if self.cancelled.is_set():
                return
            iterator = iter(produce())
            for item in iterator:
                self._put(item)
                if self._progress is not None:
                    self._progress()
                if self.cancelled.is_set():
                    break
        except BaseException as e:
            self._put(_Failed(e))
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):
                try:
                    close()
                except BaseException as e:
                    self._put(_Failed(e))
            self._put(END)

    async def next(self) -> Any:
        """The next item, or `END`; re-raises what the runtime raised."""
        item = await self._queue.get()
        if isinstance(item, _Failed):
            raise item.error
        return item

    async def stop(self) -> None:
        """Ask the worker to stop and wait until its thread is free."""
        self.cancelled.set()
        await asyncio.shield(self.done)


async def _or_gone(aw: Awaitable[Any], gone: asyncio.Future[None]) -> Any:
    task = asyncio.ensure_future(aw)
    await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    raise ClientGone


async def collect(stream: WorkerStream, receive: Receive) -> list[Any]:
    """Every item of a stream (a non-streamed answer); ClientGone stops the runtime."""
    gone = asyncio.ensure_future(wait_disconnect(receive))
    items: list[Any] = []
    try:
        while (item := await _or_gone(stream.next(), gone)) is not END:
            items.append(item)
        return items
    finally:
        gone.cancel()
        await stream.stop()


class Events(Protocol):
    """How one protocol writes a stream: each method returns whole SSE frames."""

    def begin(self) -> list[bytes]: ...
    def item(self, item: Any) -> list[bytes]: ...
    def end(self) -> list[bytes]: ...
    def failure(self, error: Exception) -> list[bytes]: ...


async def serve_events(
    stream: WorkerStream,
    events: Events,
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
) -> int:
    """Send the stream as server-sent events; returns 200, or 499 when the client left.

    An error before the first item is raised (the caller answers it with a status); one
    after the response started becomes the protocol's error event and ends the stream.
    Whatever happens, the worker is stopped and its thread free when this returns.
    """
    gone = asyncio.ensure_future(wait_disconnect(receive))
    try:
        item = await _or_gone(stream.next(), gone)
        start = {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers}
        await send(start)
        frames = events.begin()
        while True:
            if item is END:
                frames += events.end()
                break
            frames += events.item(item)
            if frames:
                body = b"".join(frames)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                frames = []
            try:
                item = await _or_gone(stream.next(), gone)
            except ClientGone:
                return 499
            except Exception as e:
                log.warning("a stream failed after it began: %s: %s", type(e).__name__, e)
                frames += events.failure(e)
                break
        await send({"type": "http.response.body", "body": b"".join(frames), "more_body": False})
        return 200
    finally:
        gone.cancel()
        await stream.stop()
