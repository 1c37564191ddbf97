"""Hung-call detection in the replica: the watched worker pool and `/health/live`."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from podium.replica.app import ReplicaInfo, create_app
from podium.replica.streaming import END, WorkerStream
from podium.replica.watch import WatchedPool
from podium.runtimes.base import Runtime, RuntimeConfig

WAIT_S = 30.0  # bounded waits; never an assertion on how long something took


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_the_oldest_running_call_is_measured_from_when_it_began_to_run() -> None:
    clock = FakeClock()
    release = threading.Event()
    with WatchedPool(2, clock=clock) as pool:
        assert (pool.running(), pool.stalled_s()) == (0, 0.0)
        first = pool.submit(release.wait, WAIT_S)
        wait_for(lambda: pool.running() == 1, "the first call to run")
        clock.now += 5
        second = pool.submit(release.wait, WAIT_S)
        wait_for(lambda: pool.running() == 2, "the second call to run")
        clock.now += 2
        assert pool.stalled_s() == 7.0  # the oldest one counts
        release.set()
        assert first.result(WAIT_S) and second.result(WAIT_S)
        wait_for(lambda: pool.running() == 0, "both calls to finish")
        assert pool.stalled_s() == 0.0


def test_progress_restarts_the_clock_of_a_streaming_call() -> None:
    clock = FakeClock()
    step, stepped, done = threading.Event(), threading.Event(), threading.Event()

    def stream() -> None:
        while not done.is_set():
            if step.wait(0.01):
                step.clear()
                pool.progress()  # an item went out
                stepped.set()

    with WatchedPool(1, clock=clock) as pool:
        future = pool.submit(stream)
        wait_for(lambda: pool.running() == 1, "the stream to run")
        clock.now += 9
        assert pool.stalled_s() == 9.0
        step.set()
        assert stepped.wait(WAIT_S)
        assert pool.stalled_s() == 0.0
        pool.progress()  # from outside any call: ignored
        done.set()
        future.result(WAIT_S)


async def test_a_flowing_stream_is_not_a_stalled_call() -> None:
    clock = FakeClock()
    items: queue.Queue[str | None] = queue.Queue()

    def produce() -> Iterator[str]:
        while (item := items.get(timeout=2 * WAIT_S)) is not None:
            yield item

    async def settle(predicate: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.01)

    with WatchedPool(1, clock=clock) as pool:
        stream = WorkerStream(pool, produce, threading.Event())
        await settle(lambda: pool.running() == 1, "the stream to run")
        for token in ("a", "b"):
            clock.now += 50  # longer than any limit, between two items
            assert pool.stalled_s() == 50
            items.put(token)
            assert await stream.next() == token
            await settle(lambda: pool.stalled_s() == 0, "the item to count as progress")
        items.put(None)
        assert await stream.next() is END
        await stream.stop()


class Spinner(Runtime):
    """Its predict blocks (without spinning a core) until `release` is set."""

    name = "spinner"

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.release = threading.Event()

    def load(self, path: Path) -> None:
        pass

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        if inputs == "hang":
            self.release.wait(WAIT_S)
        return inputs


async def test_liveness_says_hung_once_a_call_runs_past_the_limit_it_is_given() -> None:
    runtime = Spinner(RuntimeConfig("spinner"))
    info = ReplicaInfo("s-r1-abc", "spinner", 1, "python", 1234)
    app = create_app(runtime, info, max_concurrency=2, max_queue=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica") as c:
        idle = await c.get("/health/live", params={"hung_after_s": "0.05"})
        assert idle.status_code == 200
        assert idle.json() == {"status": "live", "running_calls": 0, "oldest_call_s": 0.0}
        hanging = asyncio.create_task(c.post("/", json={"inputs": "hang"}))
        deadline = time.monotonic() + WAIT_S
        while True:
            live = await c.get("/health/live", params={"hung_after_s": "0.05"})
            if live.status_code == 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        # without a limit it only reports; another request is still answered meanwhile
        plain = await c.get("/health/live")
        other = await c.post("/", json={"inputs": "fine"})
        runtime.release.set()
        assert (await hanging).status_code == 200
        bad = await c.get("/health/live", params={"hung_after_s": "soon"})
        after = await c.get("/health/live", params={"hung_after_s": "0.05"})
    app.close()
    assert live.status_code == 503, live.text
    assert live.headers["content-type"] == "application/problem+json"
    doc = live.json()
    assert doc["hung"] is True and doc["title"] == "Hung"
    assert doc["detail"].startswith("hung: the oldest call into the python runtime has run")
    assert "(limit 0.05 s)" in doc["detail"]
    assert doc["limit_s"] == 0.05 and doc["oldest_call_s"] > 0.05 and doc["running_calls"] == 1
    assert plain.status_code == 200 and plain.json()["running_calls"] == 1
    assert other.status_code == 200
    assert bad.status_code == 422 and bad.json()["field"] == "hung_after_s"
    assert after.status_code == 200
