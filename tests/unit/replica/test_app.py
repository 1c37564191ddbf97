"""The ASGI app in-process with small real runtimes: error rendering and readiness."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from podium.core.errors import Invalid, Retryable
from podium.core.problems import REFUSED_HEADER
from podium.replica.app import ReplicaInfo, create_app
from podium.runtimes.base import Capabilities, Runtime, RuntimeConfig


class Fragile(Runtime):
    name = "fragile"

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.healthy = True
        self.entered = threading.Event()
        self.release = threading.Event()

    def load(self, path: Path) -> None:
        pass

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        if inputs == "crash":
            raise KeyError("x" * 1000)
        if inputs == "invalid":
            raise Invalid("inputs must not say invalid", field="inputs")
        if inputs == "unjsonable":
            return object()
        if inputs == "downstream":  # an endpoint this model calls refused it (its SDK error)
            raise Retryable("the endpoint it calls is busy", retry_after=2)
        if inputs == "block":
            self.entered.set()
            self.release.wait()
        return inputs

    def health(self) -> bool:
        return self.healthy


def client(runtime: Runtime, max_concurrency: int = 2, max_queue: int = 2) -> httpx.AsyncClient:
    info = ReplicaInfo("f-r3-abc", "fragile", 3, "fragile", 1234)
    app = create_app(runtime, info, max_concurrency=max_concurrency, max_queue=max_queue)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replica")


async def test_unexpected_errors_are_short_500s_without_traceback() -> None:
    async with client(Fragile(RuntimeConfig("fragile"))) as c:
        crash = await c.post("/", json={"inputs": "crash"})
        unjsonable = await c.post("/", json={"inputs": "unjsonable"})
    assert crash.status_code == 500
    detail = crash.json()["detail"]
    assert detail.startswith("the fragile runtime failed: KeyError: ")
    assert len(detail) < 400
    assert "Traceback" not in crash.text
    assert unjsonable.status_code == 500
    assert "not JSON serialisable" in unjsonable.json()["detail"]


async def test_invalid_from_the_runtime_is_a_422_with_its_field() -> None:
    async with client(Fragile(RuntimeConfig("fragile"))) as c:
        r = await c.post("/", json={"inputs": "invalid"})
    assert r.status_code == 422
    assert r.json() == {
        "type": "about:blank",
        "title": "Invalid",
        "status": 422,
        "detail": "inputs must not say invalid",
        "field": "inputs",
    }


async def test_only_the_limiters_refusal_says_it_was_refused_before_any_work() -> None:
    """A full replica's 503 carries `x-podium-refused: replica` (the SDK may send it again);
    the same 503 + Retry-After raised by the model's own code does not: it ran."""
    fragile = Fragile(RuntimeConfig("fragile"))
    async with client(fragile, max_concurrency=1, max_queue=0) as c:
        first = asyncio.ensure_future(c.post("/", json={"inputs": "block"}))
        try:
            await asyncio.to_thread(fragile.entered.wait)
            full = await c.post("/", json={"inputs": 1})
        finally:
            fragile.release.set()
        assert (await first).status_code == 200
        downstream = await c.post("/", json={"inputs": "downstream"})
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    assert full.headers[REFUSED_HEADER] == "replica"
    assert downstream.status_code == 503 and downstream.headers["retry-after"] == "2"
    assert "x-podium-replica" in downstream.headers
    assert REFUSED_HEADER not in downstream.headers


async def test_readiness_follows_runtime_health() -> None:
    runtime = Fragile(RuntimeConfig("fragile"))
    async with client(runtime) as c:
        assert (await c.get("/health/ready")).status_code == 200
        runtime.healthy = False
        ready = await c.get("/health/ready")
        live = await c.get("/health/live")
    assert ready.status_code == 503
    assert ready.headers["x-podium-replica"] == "f-r3-abc"
    assert live.status_code == 200


async def test_v2_routes_are_absent_for_non_tensor_runtimes() -> None:
    async with client(Fragile(RuntimeConfig("fragile"))) as c:
        r = await c.get("/v2")
    assert r.status_code == 404
    assert r.json() == {
        "error": "the fragile runtime does not serve the Open Inference Protocol v2"
    }


class Partial(Runtime):
    """Streams partial results of `predict` (capabilities.streaming)."""

    name = "partial"
    capabilities = Capabilities(streaming=True)

    def load(self, path: Path) -> None:
        pass

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        return inputs

    def predict_stream(self, inputs: Any, parameters: dict[str, Any]) -> Iterator[Any]:
        for x in inputs:
            if x == "boom":
                raise RuntimeError("broke")
            yield {"partial": x}


async def test_predict_stream_is_served_as_server_sent_events() -> None:
    async with client(Partial(RuntimeConfig("partial"))) as c:
        r = await c.post("/", json={"inputs": [1, 2], "stream": True})
        whole = await c.post("/", json={"inputs": [1, 2]})
        failed = await c.post("/", json={"inputs": [1, "boom"], "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.content == b'data: {"partial":1}\n\ndata: {"partial":2}\n\n'
    assert whole.json() == [1, 2]
    assert failed.content == b'data: {"partial":1}\n\ndata: {"error":"broke"}\n\n'


async def test_stream_on_a_runtime_that_does_not_stream_is_a_422() -> None:
    async with client(Fragile(RuntimeConfig("fragile"))) as c:
        r = await c.post("/", json={"inputs": "x", "stream": True})
    assert r.status_code == 422
    assert r.json()["field"] == "stream"
