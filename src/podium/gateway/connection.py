"""One keep-alive HTTP/1.1 connection to a replica (an asyncio protocol fed to httptools'
parser) and the exchange of one request on it. The pool is in `http1`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, cast

import httptools

from podium.gateway.transport import (
    WHOLE_UP_TO,
    Body,
    RawHeaders,
    UpstreamBroken,
    UpstreamDied,
    UpstreamFailed,
)

HIGH_WATER = 256 * 1024  # buffered response bytes at which reading from the replica pauses
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
Key = tuple[str, int]


class Pool(Protocol):
    """What a connection tells its pool."""

    def put(self, conn: Connection) -> None: ...

    def forget(self, conn: Connection) -> None: ...

    def drop_idle(self, key: Key) -> None: ...


class Exchange:
    """One exchange on a connection: the head future, then buffered body chunks."""

    __slots__ = (
        "_buffered",
        "_conn",
        "_waiter",
        "complete",
        "delimited",
        "error",
        "got_bytes",
        "head",
        "head_only",
        "headers",
        "held",
        "interim",
        "length",
        "parts",
        "sent",
        "status",
        "upload",
    )

    def __init__(self, conn: Connection, head: asyncio.Future[None], head_only: bool) -> None:
        self._conn = conn
        self.head = head
        self.head_only = head_only
        self.status = 0
        self.headers: RawHeaders = []
        self.parts: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.complete = False
        self.error: BaseException | None = None
        self.got_bytes = False
        self.interim = False  # inside a 1xx response, which is skipped
        self.delimited = False  # content-length or chunked (else the body ends at EOF)
        self.length = -1  # the declared content-length, -1 when none
        self.held = False  # the head waits for the whole (small) body
        self.upload: asyncio.Task[None] | None = None
        self.sent = False  # the whole request was handed to the socket

    # -- fed by the connection ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.parts.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._conn.pause_reading()
        self.wake()

    def finish(self) -> None:
        self.complete = True
        if not self.head.done():
            self.head.set_result(None)
        self.wake()

    def fail(self, error: BaseException) -> None:
        if self.complete or self.error is not None:
            return
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- UpstreamResponse -----------------------------------------------------------------

    def body_if_complete(self) -> bytes | None:
        if not self.complete or self.error is not None:
            return None
        parts, self.parts = self.parts, []
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self.parts:
                parts, self.parts = self.parts, []
                self._buffered = 0
                self._conn.resume_reading()
                yield parts[0] if len(parts) == 1 else b"".join(parts)
            elif self.error is not None:
                raise self.error
            elif self.complete:
                return
            else:
                self._waiter = self.head.get_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None

    def close(self) -> None:
        self.fail(UpstreamBroken("response closed by the gateway"))
        self._conn.drop()

    def release(self) -> None:
        self._conn.release(self)


class Connection(asyncio.Protocol):
    """One keep-alive connection to a replica; the httptools parser calls back into it."""

    def __init__(self, pool: Pool, key: Key) -> None:
        self._pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.response: Exchange | None = None
        self.closed = False
        self.reused = False
        self.keep_alive = True
        self.idle_since = 0.0
        self._reading_paused = False
        self._drain: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        resp = self.response
        if resp is None:  # bytes on an idle connection: it cannot be reused
            self.drop()
            return
        resp.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            resp.fail(UpstreamBroken("the replica switched protocols"))
            self.drop()
        except httptools.HttpParserError as e:
            resp.fail(UpstreamBroken(f"invalid HTTP response from the replica: {e}"))
            self.drop()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        resp = self.response
        if resp is not None and not resp.complete:
            if resp.held:
                # It answered, then its connection ended mid-answer: it took the request
                # (so it is never re-sent) and likely died serving it.
                resp.fail(UpstreamDied("the connection ended in the middle of the answer"))
            elif not resp.head.done():
                if resp.got_bytes:
                    resp.fail(UpstreamBroken("the replica closed the connection mid-response"))
                else:
                    resp.fail(_lost_before_answer(resp.sent, exc, self.reused))
                    if self.reused:  # its idle siblings are likely closed too
                        self._pool.drop_idle(self.key)
            elif not resp.delimited and resp.status not in (204, 304):
                resp.finish()  # a body without a length ends where the connection does
            else:
                resp.fail(UpstreamBroken("the replica closed the connection mid-response"))
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_exception(UpstreamBroken("connection lost while sending the body"))

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        resp = self.response
        assert resp is not None
        resp.headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            resp.delimited = True
            resp.length = int(value) if value.isdigit() else -1
        elif lower == b"transfer-encoding":
            resp.delimited = True

    def on_headers_complete(self) -> None:
        resp = self.response
        assert resp is not None
        status = self._parser.get_status_code()
        if status < 200:
            resp.interim = True  # 100 Continue and friends: wait for the real head
            resp.headers = []
            resp.delimited = False
            resp.length = -1
            return
        resp.status = status
        if resp.head_only:
            # The answer to HEAD has no body whatever it says; llhttp cannot be told so,
            # so this connection is not reused.
            self.keep_alive = False
            resp.finish()
        elif 0 < resp.length <= WHOLE_UP_TO:
            resp.held = True  # `finish` gives the head with the whole body
        elif not resp.head.done():
            resp.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        resp = self.response
        if resp is not None and not resp.head_only:
            resp.feed(body)

    def on_message_complete(self) -> None:
        resp = self.response
        assert resp is not None
        if resp.interim:
            resp.interim = False
            return
        if not self._parser.should_keep_alive():
            self.keep_alive = False
        resp.finish()

    # -- used by the pool and the response ------------------------------------------------

    def send(
        self,
        method: str,
        target: str,
        headers: RawHeaders,
        body: Body | None,
        content_length: int | None,
    ) -> Exchange:
        loop = asyncio.get_running_loop()
        resp = Exchange(self, loop.create_future(), method == "HEAD")
        self.keep_alive = True
        host, port = self.key
        parts = [
            method.encode("ascii"),
            b" ",
            target.encode("latin-1"),
            b" HTTP/1.1\r\nhost: ",
            f"{host}:{port}".encode("ascii"),
            b"\r\n",
        ]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if body is None or isinstance(body, bytes):
            data = body or b""
            if data or content_length is not None or method not in _BODYLESS_METHODS:
                parts.append(b"content-length: %d\r\n\r\n" % len(data))
            else:
                parts.append(b"\r\n")
            parts.append(data)
            self._write(b"".join(parts))
            self.response = resp  # no byte can arrive before this: same step as the write
            resp.sent = True
        else:
            chunked = content_length is None
            if content_length is None:
                parts.append(b"transfer-encoding: chunked\r\n\r\n")
            else:
                parts.append(b"content-length: %d\r\n\r\n" % content_length)
            self._write(b"".join(parts))
            self.response = resp
            resp.upload = loop.create_task(self._upload(resp, body, chunked))
        return resp

    def _write(self, data: bytes) -> None:
        """Write the request head; a connection found closing counts as stale."""
        transport = self.transport
        assert transport is not None
        try:
            if transport.is_closing():
                raise ConnectionResetError("connection closing")
            transport.write(data)
        except (OSError, RuntimeError) as e:  # uvloop: RuntimeError on a closed handle
            self.drop()
            raise UpstreamFailed(f"cannot send: {e}", stale=self.reused) from None

    async def _upload(self, resp: Exchange, body: AsyncIterable[bytes], chunked: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            async for chunk in body:
                if self.closed:
                    return
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                if self._drain is not None:
                    await self._drain
            if chunked and not self.closed:
                transport.write(b"0\r\n\r\n")
            resp.sent = not self.closed
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the client's body failed (too large, client gone)
            resp.fail(UpstreamBroken(f"request body upload failed: {e}"))
            self.drop()

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def release(self, resp: Exchange) -> None:
        if self.response is resp:
            self.response = None
            upload_running = resp.upload is not None and not resp.upload.done()
            if upload_running or not (resp.complete and resp.error is None and self.keep_alive):
                self.drop()
            if upload_running and resp.upload is not None:
                resp.upload.cancel()
            self._pool.put(self)

    def drop(self) -> None:
        """Close the connection (the replica sees EOF); it is never reused."""
        self.keep_alive = False
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


def _lost_before_answer(sent: bool, exc: Exception | None, reused: bool) -> Exception:
    """What a connection that ended before any response byte means for its request.

    Not fully written, or reset (the kernel resets a socket closed with unread data, so
    the replica never read the request): it cannot have reached the model. Otherwise the
    replica read the request and then closed: it may have died serving it.
    """
    reason = f"connection lost: {exc}" if exc else "server disconnected"
    if not sent or isinstance(exc, ConnectionResetError):
        return UpstreamFailed(reason, stale=reused)
    return UpstreamDied(reason, stale=reused)
