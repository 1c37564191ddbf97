"""Request bodies: small ones are read whole (so a retry can resend them), large ones stream.

`read_body` returns `bytes` for a body of at most `retry_bytes`, else a `StreamedBody`
whose `chunks()` passes the client's chunks on as they arrive. Both enforce `max_bytes`.
(The limit is why this is not the kit's `core.asgi.read_body`; `ClientGone` is the kit's.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from podium.core.asgi import ClientGone as ClientGone
from podium.core.asgi import Receive


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the limit of {limit} bytes")
        self.limit = limit


class StreamedBody:
    """A body too large to buffer: read from the client while it is sent upstream.

    It can be sent again only while `started` is False (a connection that failed before
    the upload began). `too_large` and `client_gone` say why an upload was cut short.
    `size` counts the bytes read from the client so far; with `captured` set (payload
    capture), its first `capture_limit` bytes are kept there too.
    """

    def __init__(self, receive: Receive, head: list[bytes], size: int, max_bytes: int) -> None:
        self._receive = receive
        self._head = head
        self._size = size
        self._max = max_bytes
        self.started = False
        self.done = False  # the client's last chunk was read
        self.too_large = False
        self.client_gone = False
        self.captured: bytearray | None = None
        self.capture_limit = 0

    @property
    def size(self) -> int:
        """Bytes of the body read from the client so far."""
        return self._size

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        head, self._head = self._head, []
        for part in head:
            self._keep(part)
            yield part
        receive, limit = self._receive, self._max
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                raise ClientGone()
            chunk: bytes = message.get("body", b"")
            self._size += len(chunk)
            if self._size > limit:
                self.too_large = True
                raise BodyTooLarge(limit)
            more = message.get("more_body", False)
            if not more:
                self.done = True
            if chunk:
                self._keep(chunk)
                yield chunk
            if not more:
                return

    def _keep(self, chunk: bytes) -> None:
        captured = self.captured
        if captured is not None and len(captured) < self.capture_limit:
            captured += chunk[: self.capture_limit - len(captured)]


async def read_body(
    receive: Receive, content_length: int | None, *, retry_bytes: int, max_bytes: int
) -> bytes | StreamedBody:
    """Read the request body, raising `BodyTooLarge` or `ClientGone` before any upload."""
    if content_length is not None:
        if content_length > max_bytes:
            raise BodyTooLarge(max_bytes)
        if content_length > retry_bytes:
            return StreamedBody(receive, [], 0, max_bytes)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if not chunks:
                if len(chunk) > max_bytes:
                    raise BodyTooLarge(max_bytes)
                return chunk  # the usual case: one message
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(max_bytes)
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(max_bytes)
        if size > retry_bytes:
            return StreamedBody(receive, chunks, size, max_bytes)
