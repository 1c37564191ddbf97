"""A loopback proxy in front of a fake Hub (tests/support/silent_hub.py) that records the
`Authorization` header of every request, so a test can say which token the Hub saw."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@contextmanager
def recording_proxy(upstream: str, seen: list[tuple[str, str]]) -> Iterator[str]:
    """`http://127.0.0.1:PORT` forwarding GET and HEAD to `upstream`; `seen` gets each
    request's (path, Authorization header: "" when none)."""
    target = urlsplit(upstream)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._forward()

        def do_GET(self) -> None:
            self._forward()

        def _forward(self) -> None:
            seen.append((self.path, self.headers.get("Authorization", "")))
            conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
            try:
                conn.request(self.command, self.path, headers={"Accept": "*/*"})
                answer = conn.getresponse()
                body = answer.read()
            finally:
                conn.close()
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="hub-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
