"""Real servers for the gateway tests: uvicorn in a background thread, on a free port.

`Upstream` is a small ASGI app standing in for a replica:
  /stream  sends "chunk-1\\n", waits for `release()` (or the client leaving), sends the rest
  /slow    waits for `release()` (or the client leaving), then answers like /echo
  /big?N   sends N bytes in 64 KiB chunks (chunk i is byte i % 251, repeated)
  /busy    answers 503 with Retry-After, a problem of its own (an overloaded server)
  anything else echoes method, path, raw path, query, headers and body as JSON
Every answer says which server made it (`server`).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
import uvloop

Scope = dict[str, Any]


def dead_port() -> int:
    """A loopback port with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll until `predicate()` holds; False if it never did (a guard, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 in a thread with its own event loop."""

    def __init__(self, app: Any, *, lifespan: str = "off") -> None:
        # IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on sockets that say so.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan=lifespan,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        # uvloop, as in production: its transports differ from asyncio's in small ways.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self.server.serve(sockets=[self._sock]))

    def start(self) -> ServerThread:
        self._thread.start()
        if not wait_until(lambda: self.server.started or not self._thread.is_alive()):
            raise RuntimeError("server did not start")
        if not self.server.started:
            raise RuntimeError("server failed to start")
        return self

    def stop(self) -> None:
        stop_all([self])


def stop_all(servers: list[ServerThread]) -> None:
    """Stop servers together (each takes a uvicorn tick or two to notice)."""
    for s in servers:
        s.server.should_exit = True
    for s in servers:
        s._thread.join(timeout=10)
        s._sock.close()


class Upstream:
    """The stand-in replica app (see the module docstring)."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self.requests = 0
        self.holding = threading.Event()  # a /stream or /slow request is waiting
        self.disconnected = threading.Event()  # a waiting request saw its client leave
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None

    def release(self) -> None:
        """Let every waiting (and later) /stream and /slow request finish."""
        if self._loop is not None and self._release is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release.set)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self._release is None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
        self.requests += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        path = scope["path"]
        if path == "/stream":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"chunk-1\n", "more_body": True})
            if not await self._wait(receive):
                return
            await send({"type": "http.response.body", "body": b"chunk-2\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"end\n", "more_body": False})
            return
        if path == "/big":  # ?n bytes in 64 KiB chunks, with a digest header of sorts
            total = int(scope["query_string"] or b"0")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for start in range(0, total, 65536):
                chunk = bytes([start // 65536 % 251]) * min(65536, total - start)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if path == "/slow" and not await self._wait(receive):
            return
        if path == "/busy":  # an overloaded server of the user's: a problem, 503, Retry-After
            busy = b'{"type":"about:blank","title":"Service Unavailable","status":503}'
            head = [(b"content-type", b"application/problem+json"), (b"retry-after", b"1")]
            await send({"type": "http.response.start", "status": 503, "headers": head})
            await send({"type": "http.response.body", "body": busy, "more_body": False})
            return
        doc = {
            "server": self.server_id,
            "method": scope["method"],
            "path": path,
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body": body.decode("latin-1"),
        }
        payload = json.dumps(doc).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-upstream", self.server_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _wait(self, receive: Any) -> bool:
        """Wait for `release()`; False if the client left first."""
        assert self._release is not None
        self.holding.set()
        released = asyncio.ensure_future(self._release.wait())
        left = asyncio.ensure_future(receive())
        done, pending = await asyncio.wait({released, left}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if released in done:
            return True
        self.disconnected.set()
        return False


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Any]


class RawServer:
    """A TCP server speaking hand-written HTTP/1.1 bytes, for replies uvicorn never makes.

    `handler(reader, writer, n)` serves connection number `n` (0, 1, …).
    """

    def __init__(self, handler: RawHandler) -> None:
        self._handler = handler
        self._connections = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    @property
    def connections(self) -> int:
        """How many connections it has accepted."""
        return self._connections

    def __enter__(self) -> RawServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("raw server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = self._connections
        self._connections += 1
        try:
            await self._handler(reader, writer, n)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request head and its content-length body; b"" at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")
