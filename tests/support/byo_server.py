"""A tiny bring-your-own server for framework `command` tests (standard library only).

    python tests/support/byo_server.py [--port P] [--fail-health] [--exit-code N]

Listens on 127.0.0.1:$PORT (or --port) and serves the model folder $PODIUM_MODEL_PATH:

- GET /health: 200 {"ok": true}, or 503 with --fail-health
- GET /env: 200 {NAME: value} of its environment's BYO_* variables
- GET anything else: 200 {"method", "path", "model_file"}
- POST anything: 200 {"method", "path", "body", "model_file", "env"}: the body as text,
  `model_file` the content of message.txt in the model folder, `env` the value of $BYO_ECHO

`--exit-code N` exits with N at once, before serving (a crash, or 3 for a load failure).
SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL_FILE = "message.txt"


class Handler(BaseHTTPRequestHandler):
    fail_health = False
    model_path = Path(".")

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/health":
            if self.fail_health:
                self._send(503, {"ok": False})
            else:
                self._send(200, {"ok": True})
            return
        if self.path == "/env":
            self._send(200, {k: v for k, v in os.environ.items() if k.startswith("BYO_")})
            return
        self._send(200, {"method": "GET", "path": self.path, "model_file": self._model_file()})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        self._send(
            200,
            {
                "method": "POST",
                "path": self.path,
                "body": body,
                "model_file": self._model_file(),
                "env": os.environ.get("BYO_ECHO"),
            },
        )

    def _model_file(self) -> str | None:
        try:
            return (self.model_path / MODEL_FILE).read_text(encoding="utf-8")
        except OSError:
            return None

    def _send(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"byo-server: {format % args}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--fail-health", action="store_true")
    p.add_argument("--exit-code", type=int, default=None)
    args = p.parse_args(argv)
    if args.exit_code is not None:
        print(f"byo-server: exiting with {args.exit_code} as asked", flush=True)
        return int(args.exit_code)
    port = args.port if args.port is not None else int(os.environ["PORT"])
    Handler.fail_health = args.fail_health
    Handler.model_path = Path(os.environ.get("PODIUM_MODEL_PATH", "."))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"byo-server: listening on 127.0.0.1:{port}, model {Handler.model_path}", flush=True)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
