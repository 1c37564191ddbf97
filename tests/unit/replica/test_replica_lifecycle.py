"""Load failures, admission limits, disconnects and graceful shutdown of a real replica."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.models import train_iris_pickle, write_python_bundle
from tests.unit.replica.conftest import Replica, launch


def gauge(replica: Replica, name: str) -> float:
    text = httpx.get(f"{replica.url}/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state change; the deadline only guards against hanging forever."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_load_failure_exits_3_with_status(tmp_path: Path) -> None:
    bundle = write_python_bundle(tmp_path / "bundle", fail_load="weights are missing")
    replica = launch(tmp_path, runtime="python", model_path=bundle, endpoint="broken")
    assert replica.proc.wait() == 3
    message = "Model.load() raised RuntimeError: weights are missing"
    assert replica.status() == {"state": "load_failed", "error": message}
    log = replica.log()
    assert f"replica broken-r1-test: failed to load the model: {message}" in log
    assert "Traceback" not in log


def test_refused_pickle_and_unknown_framework_exit_3(tmp_path: Path) -> None:
    model = train_iris_pickle(tmp_path / "pickle")
    pickle = launch(tmp_path, runtime="sklearn", model_path=model, endpoint="pickled")
    assert pickle.proc.wait() == 3
    assert "refusing to load it" in pickle.status()["error"]
    unknown = launch(tmp_path, runtime="nope", model_path=model, endpoint="unknown")
    assert unknown.proc.wait() == 3
    assert unknown.status()["error"].startswith("unknown framework 'nope'; known: ")


@pytest.fixture(scope="module")
def sleepy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """Predictions take 1 s; one runs at a time and one may wait."""
    tmp = tmp_path_factory.mktemp("sleepy")
    bundle = write_python_bundle(tmp / "bundle", sleep_s=1.0)
    replica = launch(
        tmp,
        runtime="python",
        model_path=bundle,
        endpoint="sleepy",
        extra=["--max-concurrency", "1", "--max-queue", "1"],
    )
    assert replica.proc.poll() is None, replica.log()
    yield replica
    assert replica.stop() == 0, replica.log()


async def test_requests_beyond_the_queue_get_503(sleepy: Replica) -> None:
    async with httpx.AsyncClient(base_url=sleepy.url, timeout=30) as c:
        answers = await asyncio.gather(*(c.post("/", json={"inputs": i}) for i in range(4)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 503, 503]
    for r in answers:
        assert r.headers["x-podium-replica"] == sleepy.replica_id
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["detail"] == "replica busy: 1 in flight and 1 queued"


async def test_a_client_leaving_the_queue_frees_its_place(sleepy: Replica) -> None:
    wait_until(lambda: gauge(sleepy, "podium_replica_in_flight") == 0, "idle")
    async with httpx.AsyncClient(base_url=sleepy.url, timeout=30) as c:
        first = asyncio.create_task(c.post("/", json={"inputs": "first"}))
        await asyncio.to_thread(
            wait_until, lambda: gauge(sleepy, "podium_replica_in_flight") == 1, "in flight"
        )
        body = b'{"inputs": "leaver"}'
        with socket.create_connection(("127.0.0.1", sleepy.port or 0)) as raw:
            raw.sendall(
                b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            await asyncio.to_thread(
                wait_until, lambda: gauge(sleepy, "podium_replica_queued") == 1, "queued"
            )
        await asyncio.to_thread(
            wait_until, lambda: gauge(sleepy, "podium_replica_queued") == 0, "left the queue"
        )
        assert (await first).status_code == 200
        after = await c.post("/", json={"inputs": "after"})
    assert after.json() == {"version": 1, "echo": "after"}
    assert (
        'podium_replica_requests_total{code="499",protocol="hf"}'
        in httpx.get(f"{sleepy.url}/metrics").text
    )


async def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path) -> None:
    bundle = write_python_bundle(tmp_path / "bundle", sleep_s=1.0)
    replica = launch(tmp_path, runtime="python", model_path=bundle, endpoint="draining")
    assert replica.proc.poll() is None, replica.log()
    try:
        async with httpx.AsyncClient(base_url=replica.url, timeout=30) as c:
            pending = asyncio.create_task(c.post("/", json={"inputs": "last words"}))
            await asyncio.to_thread(
                wait_until, lambda: gauge(replica, "podium_replica_in_flight") == 1, "in flight"
            )
            replica.proc.send_signal(signal.SIGTERM)
            answer = await pending
        assert answer.status_code == 200
        assert answer.json() == {"version": 1, "echo": "last words"}
        assert await asyncio.to_thread(replica.proc.wait, 30) == 0
    finally:
        replica.stop()
