"""Dynamic batching: concurrent requests share `predict_batch` calls; bad ones fail alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.replica.batching import BatchConfig, Batcher, BatchSizeMismatch
from tests.unit.replica.bundles import batch_sizes, write_batch_bundle
from tests.unit.replica.conftest import Replica, launch

# A long wait: a batch goes when it is full, so these tests do not depend on timing.
FULL_ONLY = ["--max-wait-ms", "60000"]


def start(tmp: Path, state: Path, *extra: str) -> Replica:
    bundle = write_batch_bundle(tmp / "bundle", state)
    replica = launch(tmp, runtime="python", model_path=bundle, endpoint="cls", extra=list(extra))
    assert replica.proc.poll() is None, replica.log()
    return replica


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def batched(tmp_path: Path, state: Path) -> Iterator[Replica]:
    replica = start(tmp_path, state, "--max-concurrency", "16", "--max-batch-size", "8", *FULL_ONLY)
    yield replica
    assert replica.stop() == 0, replica.log()


async def post_all(replica: Replica, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=replica.url, timeout=30, limits=limits) as http:
        return await asyncio.gather(*(http.post("/", json=b) for b in bodies))


def test_concurrent_requests_share_predict_batch_calls(batched: Replica, state: Path) -> None:
    texts = [f"good {i}" if i % 2 else f"meh {i}" for i in range(16)]
    answers = asyncio.run(post_all(batched, [{"inputs": t} for t in texts]))
    assert [r.status_code for r in answers] == [200] * 16
    for text, r in zip(texts, answers, strict=True):  # each request got its own output
        assert r.json()[0]["label"] == ("NEGATIVE" if "good" in text else "POSITIVE")
    assert batch_sizes(state) == [8, 8]  # 16 requests, 2 calls
    info = httpx.get(batched.url + "/podium/info").json()
    # Nothing left running or queued; at the peak at least one batch's 8 ran at once.
    load = info["load"]
    assert (load["in_flight"], load["queued"], load["max_queued"]) == (0, 0, 0), load
    assert 8 <= load["max_in_flight"] <= 16, load
    assert info["batching"] == {"max_batch_size": 8, "max_wait_ms": 60000.0}
    metrics = httpx.get(batched.url + "/metrics").text
    assert "podium_replica_batch_size_count 2.0" in metrics
    assert "podium_replica_batch_size_sum 16.0" in metrics


def test_different_parameters_are_not_mixed(tmp_path: Path, state: Path) -> None:
    replica = start(tmp_path, state, "--max-concurrency", "4", "--max-batch-size", "2", *FULL_ONLY)
    try:
        bodies = [
            {"inputs": "good", "parameters": {"flip": True}},
            {"inputs": "good"},
            {"inputs": "good", "parameters": {"flip": True}},
            {"inputs": "good", "parameters": {}},
        ]
        answers = asyncio.run(post_all(replica, bodies))
    finally:
        assert replica.stop() == 0, replica.log()
    labels = [r.json()[0]["label"] for r in answers]
    assert labels == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]
    assert batch_sizes(state) == [2, 2]


def test_a_poisoned_request_fails_alone(batched: Replica, state: Path) -> None:
    bodies = [{"inputs": "poison" if i == 3 else f"good {i}"} for i in range(8)]
    answers = asyncio.run(post_all(batched, bodies))
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 200, 200, 500, 200, 200, 200, 200]
    assert "poisoned input" in answers[3].json()["detail"]
    # One batch of 8 failed, then each request alone.
    assert batch_sizes(state) == [8, 1, 1, 1, 1, 1, 1, 1, 1]
    assert httpx.get(batched.url + "/podium/info").json()["load"]["in_flight"] == 0


def test_without_batching_flags_each_request_is_its_own_call(tmp_path: Path, state: Path) -> None:
    replica = start(tmp_path, state)
    try:
        answers = asyncio.run(post_all(replica, [{"inputs": "good"}] * 4))
        info = httpx.get(replica.url + "/podium/info").json()
    finally:
        assert replica.stop() == 0, replica.log()
    assert [r.status_code for r in answers] == [200] * 4
    assert batch_sizes(state) == [1, 1, 1, 1]
    assert info["batching"] is None


# ---------------------------------------------------------------------- in process


async def test_a_partial_batch_goes_after_max_wait() -> None:
    calls: list[list[Any]] = []

    def batch(inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        calls.append(inputs)
        return [x * 10 for x in inputs]

    with ThreadPoolExecutor(2) as pool:
        batcher = Batcher(pool, batch, lambda x, p: x, BatchConfig(max_batch_size=8, max_wait_ms=1))
        assert await asyncio.gather(batcher.submit(1, {}), batcher.submit(2, {})) == [10, 20]
    assert calls == [[1, 2]]
    assert batcher.waiting == 0


async def test_a_wrong_output_count_fails_the_whole_batch_clearly() -> None:
    with ThreadPoolExecutor(2) as pool:
        batcher = Batcher(
            pool, lambda xs, p: xs[:-1], lambda x, p: x, BatchConfig(max_batch_size=3)
        )
        results = await asyncio.gather(
            *(batcher.submit(i, {}) for i in range(3)), return_exceptions=True
        )
    assert all(isinstance(r, BatchSizeMismatch) for r in results)
    assert str(results[0]) == "predict_batch returned 2 outputs for a batch of 3 inputs"


def test_batch_config_is_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BatchConfig(max_batch_size=0)
