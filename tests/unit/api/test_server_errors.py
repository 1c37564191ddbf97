"""A true server bug is a 500 problem, and the keep-alive connection survives it.

Real uvicorn on loopback: Starlette's own `Exception` handler answered the 500 and then
re-raised, so uvicorn dropped the connection without `connection: close` and a client's
next request on it failed.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from podium.api import ApiContext, create_api
from tests.support.server import free_port


def _boom() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
def served(ctx: ApiContext) -> Iterator[int]:
    app: FastAPI = create_api(ctx)
    app.add_api_route("/api/v1/boom", _boom, methods=["GET"])
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield port
    server.should_exit = True
    thread.join(timeout=60)


def test_500_is_a_problem_and_keeps_the_connection(served: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served, timeout=30)
    try:
        conn.request("GET", "/api/v1/boom")
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 500
        assert r.getheader("content-type") == "application/problem+json"
        assert body == {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "internal error",
        }
        conn.request("GET", "/api/v1/health")  # the same connection
        again = conn.getresponse()
        again.read()
        assert again.status == 200
    finally:
        conn.close()
