"""Loopback listeners that play a Hugging Face Hub that hangs (for download timeouts)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def silent_listener(*, headers: bytes | None = None) -> Iterator[str]:
    """`http://127.0.0.1:PORT` of a listener that accepts connections and never answers,
    or, with `headers`, sends those bytes (a status line and headers, perhaps a first piece
    of body) and then nothing more. Connections stay open until the block ends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            if headers is not None:
                conn.recv(65536)  # the request
                conn.sendall(headers)

    thread = threading.Thread(target=accept, name="silent-hub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for conn in held:
            conn.close()
