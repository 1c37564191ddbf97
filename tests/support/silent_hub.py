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


@contextmanager
def fake_hub(
    repo_id: str,
    files: dict[str, bytes],
    *,
    stall_after: int | None = None,
    file_sizes: bool = True,
) -> Iterator[str]:
    """`http://127.0.0.1:PORT` of a tiny Hub serving one model repo (the routes
    huggingface_hub's snapshot_download uses). With `stall_after`, a file's body stops after
    that many bytes (headers and the first bytes sent, then nothing) until the block ends.
    The repo's info gives each file's size when asked (`?blobs=True`, as the Hub does),
    unless `file_sizes` is False (a Hub that does not tell the total)."""
    import hashlib
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sha = hashlib.sha1(repo_id.encode() + b"".join(sorted(files.values()))).hexdigest()
    released = threading.Event()

    class Hub(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str], cut: int) -> None:
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            self.wfile.write(body[:cut])
            self.wfile.flush()
            if cut < len(body):
                released.wait(120)  # a Hub that stopped sending

        def _json(self, value: object) -> None:
            body = json.dumps(value).encode()
            self._send(200, body, {"Content-Type": "application/json"}, len(body))

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path.startswith(f"/api/models/{repo_id}/revision/"):
                siblings: list[dict[str, object]] = [{"rfilename": name} for name in files]
                if file_sizes and "blobs=" in query:
                    for sibling, data in zip(siblings, files.values(), strict=True):
                        sibling["size"] = len(data)
                return self._json({"id": repo_id, "sha": sha, "siblings": siblings})
            if path.startswith(f"/api/models/{repo_id}/tree/"):
                return self._json(
                    [
                        {
                            "type": "file",
                            "path": name,
                            "size": len(data),
                            "oid": hashlib.sha1(data).hexdigest(),
                        }
                        for name, data in files.items()
                    ]
                )
            prefix = f"/{repo_id}/resolve/"
            if path.startswith(prefix) and path[len(prefix) :].split("/", 1)[-1] in files:
                data = files[path[len(prefix) :].split("/", 1)[1]]
                headers = {
                    "X-Repo-Commit": sha,
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "Content-Type": "application/octet-stream",
                }
                cut = len(data) if stall_after is None else min(stall_after, len(data))
                return self._send(200, data, headers, cut)
            body = json.dumps({"error": "not found"}).encode()
            self._send(404, body, {"Content-Type": "application/json"}, len(body))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        released.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
