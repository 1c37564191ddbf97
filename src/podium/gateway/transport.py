"""The seam between the proxy and HTTP to replicas.

Two implementations: `http1.Http1Transport` (default: a lean keep-alive HTTP/1.1 client
on asyncio + httptools) and `aiohttp_transport.AiohttpTransport` (one shared aiohttp
session). The proxy sees only this module: failures arrive as one of

    UpstreamFailed   the request cannot have reached the model (connect refused or timed
                     out, the connection failed before the request was fully written, or
                     reset by a replica that never read it): it may go to another replica
                     (`stale`: it was a reused keep-alive connection, the replica itself
                     may be fine: try it again on a new connection)
    UpstreamDied     the whole request was sent, then the connection ended before any
                     response byte: the replica may have died serving it, so it is never
                     sent to another replica (`stale`: a reused keep-alive connection,
                     which the replica may have closed as idle just as the request went
                     out: try the same replica once on a new connection)
    UpstreamBroken   the replica answered something unusable, or broke off mid-answer
                     (only a streamed or large answer: see `WHOLE_UP_TO`)
    TimeoutError     (from the proxy's own deadline on the response head)
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from podium.core.routing import ReplicaRoute

RawHeaders = list[tuple[bytes, bytes]]
# An answer that declares a length up to this is collected whole before `request` returns,
# so a replica killed between writing its head and its body (uvicorn writes them apart)
# raises `UpstreamDied` and the client gets a clear 502, not a 200 head on a cut connection.
WHOLE_UP_TO = 64 * 1024
Body = bytes | AsyncIterable[bytes]


class UpstreamFailed(Exception):
    """The request cannot have reached the model: safe to send it to another replica."""

    def __init__(self, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stale = stale


class UpstreamDied(Exception):
    """The request was sent whole, then the connection ended before any response byte:
    the replica may have crashed serving it (never retried on another replica)."""

    def __init__(self, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stale = stale


class UpstreamBroken(Exception):
    """The replica's answer is unusable, or it broke off after the response began."""


class UpstreamResponse(Protocol):
    status: int
    headers: RawHeaders  # as the replica sent them (names in any case)

    def body_if_complete(self) -> bytes | None:
        """The whole body if it has already arrived (then `release()`), else None."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; raises UpstreamBroken if the replica breaks off."""
        ...

    def close(self) -> None:
        """Abort: drop the connection, so the replica sees its client leave."""
        ...

    def release(self) -> None:
        """Done with the response: its connection may serve the next request."""
        ...


class Transport(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def request(
        self,
        replica: ReplicaRoute,
        method: str,
        target: str,
        headers: RawHeaders,
        body: Body | None,
        content_length: int | None,
    ) -> UpstreamResponse:
        """Send a request; return once the response head arrived (with the whole body
        when it declares a length up to `WHOLE_UP_TO`).

        `body` is bytes (sent with a content-length) or an async iterable (sent with
        `content_length` if known, else chunked). Raises UpstreamFailed / UpstreamDied /
        UpstreamBroken.
        Cancellation (the proxy's deadline) drops the connection.
        """
        ...
