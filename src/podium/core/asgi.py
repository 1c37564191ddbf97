"""The ASGI kit: the types and the few helpers every raw ASGI surface of Podium shares.

The gateway, the replica and the API's pure ASGI middleware (`BodyLimit`,
`ServerErrorGuard`) speak ASGI directly; they take these from here instead of each keeping
a copy. Pure: no server, no framework, no I/O beyond the `receive` / `send` handed in.

    Scope, Message, Receive, Send, ASGIApp   the ASGI callables' types
    ClientGone                               the client disconnected before its answer
    read_body(receive)                       the whole body (ClientGone if the client left)
    wait_disconnect(receive)                 returns once the client goes away
    send_whole(send, status, type, body)     one head and one whole body
    serve_lifespan(receive, send, start, stop)  the lifespan protocol around two callables
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client disconnected before its answer was ready; nothing more is sent."""


async def read_body(receive: Receive) -> bytes:
    """The whole request body; ClientGone if the client disconnects first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client goes away (call only after the body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_whole(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """A whole answer: one head (content-type, content-length, `headers`), one body."""
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def serve_lifespan(
    receive: Receive,
    send: Send,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
) -> None:
    """Answer the ASGI lifespan messages: `startup()` (its failure is reported to the
    server, which then exits) and `shutdown()`."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as e:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(e)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
