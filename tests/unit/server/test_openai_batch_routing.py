"""The server sends OpenAI's Batch API (`/v1/files`, `/v1/batches`) to the control-plane
API, and every other `/v1/…` path to the gateway's OpenAI router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.inproc import InProcessPodium, Served, serving


@pytest.fixture(scope="module")
def _served() -> Iterator[Served]:
    with serving() as served:
        yield served


@pytest.fixture
def podium(_served: Served, tmp_path: Path) -> Iterator[InProcessPodium]:
    yield _served.fresh(tmp_path / "home")
    _served.close_current()


def test_batches_and_files_reach_the_api_and_models_the_gateway(podium: InProcessPodium) -> None:
    h = podium.headers
    batches = httpx.get(f"{podium.url}/v1/batches", headers=h, timeout=10)
    assert batches.status_code == 200, batches.text
    assert batches.json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    up = httpx.post(
        f"{podium.url}/v1/files",
        headers=h,
        files={"file": ("b.jsonl", b"{}\n")},
        data={"purpose": "batch"},
        timeout=10,
    )
    assert up.status_code == 200 and up.json()["object"] == "file"
    models = httpx.get(f"{podium.url}/v1/models", headers=h, timeout=10)  # the router's
    assert models.status_code == 200 and models.json() == {"object": "list", "data": []}
