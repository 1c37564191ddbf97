"""A `command` server with worker processes (standard library only), for memory tests.

    python tests/support/forking_server.py

Listens on 127.0.0.1:$PORT, one request at a time (no threads, so forking is safe):

- GET /health: 200 {"ok": true}
- POST /workers?n=N&mb=M: forks N worker processes and answers 200 {"pids": [...],
  "rss_mib": R}, R being this server's own resident memory; once the answer is sent,
  each worker allocates and touches M MiB, then sleeps until killed. (Allocating after
  the answer means a limit the workers pass cannot cut the answer off.)

The server itself stays small; only its children hold the memory, as in a server that
forks worker processes (gunicorn, a multiprocessing pool).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MiB = 1024 * 1024


def fork_worker(mb: int) -> tuple[int, int]:
    """(pid, fd): the worker allocates `mb` MiB once a byte is written to fd."""
    go, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: wait for the word, hold the memory, sleep until killed
        try:
            os.close(write)
            os.read(go, 1)
            hoard = b"\x01" * (mb * MiB)  # written, so resident
            print(f"worker {os.getpid()} holds {mb} MiB", flush=True)
            while hoard:
                time.sleep(3600)
        finally:
            os._exit(0)
    os.close(go)
    return pid, write


def own_rss_mib() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // MiB


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._send(200 if self.path == "/health" else 404, {"ok": self.path == "/health"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/workers":
            self._send(404, {"error": "not found"})
            return
        query = parse_qs(url.query)
        n, mb = int(query["n"][0]), int(query["mb"][0])
        workers = [fork_worker(mb) for _ in range(n)]
        self._send(200, {"pids": [pid for pid, _ in workers], "rss_mib": own_rss_mib()})
        for _, go in workers:
            os.write(go, b"1")
            os.close(go)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> None:
    server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    print(f"listening on {server.server_address}, RLIMIT_DATA {soft}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
