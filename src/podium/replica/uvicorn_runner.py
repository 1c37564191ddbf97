"""Run an ASGI app with uvicorn, on a port or an inherited listening socket.

uvloop and httptools are used when installed. SIGTERM / SIGINT: uvicorn stops accepting
connections, lets in-flight requests finish (no timeout: the backend escalates to SIGKILL
after its own stop timeout), then `serve` returns.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

import uvicorn

OnReady = Callable[[str, int], None]


class ReadyServer(uvicorn.Server):
    """Calls `on_ready(host, port)` once the listening socket accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: OnReady) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._on_ready(host, port)


def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, fd: int | None = None, on_ready: OnReady
) -> bool:
    """Serve until signalled; False if the server never started (e.g. port taken)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if find_spec("uvloop") else "asyncio",
        http="httptools" if find_spec("httptools") else "h11",
        lifespan="off",
        access_log=False,
        log_config=None,  # uvicorn's lines go through the replica's one handler (main)
        log_level="info",
        server_header=False,
        timeout_graceful_shutdown=None,
    )
    server = ReadyServer(config, on_ready)
    sockets = [socket.socket(fileno=fd)] if fd is not None else None
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with
    # no-op handlers underneath, that re-raise is harmless and the process exits normally.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore)
    server.run(sockets=sockets)
    return server.started


def _ignore(signum: int, frame: object) -> None:
    return None
