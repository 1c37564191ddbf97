"""`AsyncClient` against the real server app (`tests.support.inproc`): the endpoint
lifecycle and `invoke`, with the same validation and errors as `PodiumClient`."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.client import (
    AsyncClient,
    Conflict,
    EndpointStatus,
    Invalid,
    LoadError,
    NotFound,
    PodiumClient,
    WaitTimeout,
)
from tests.support.inproc import InProcessPodium
from tests.unit.client.test_packing import make_model

SPEC = {"name": "iris", "model": "iris", "framework": "sklearn"}


@pytest.fixture
def pushed(client: PodiumClient, tmp_path: Path) -> PodiumClient:
    client.push_model(make_model(tmp_path), "iris", framework="sklearn")
    return client


async def test_the_lifecycle_awaited(pushed: PodiumClient, podium: InProcessPodium) -> None:
    async with AsyncClient(podium.url) as client:  # the token: $PODIUM_TOKEN
        created = await client.deploy(SPEC)
        assert (created.name, created.status) == ("iris", EndpointStatus.PENDING)
        with pytest.raises(Conflict):
            await client.deploy(SPEC)
        with pytest.raises(WaitTimeout):
            await client.wait_for("iris", {"running"}, timeout=0.1, poll=0.02)
        podium.ready("iris")
        running = await client.wait_for("iris", {"running"}, timeout=5)
        assert running.ready_replicas == 1
        assert [e.name for e in await client.endpoints(status="running")] == ["iris"]

        assert await client.invoke("iris", {"inputs": [1]}) == {"outputs": [1], "path": "/"}
        changed = await client.update("iris", {"labels": {"team": "ml"}})
        assert changed.spec.labels == {"team": "ml"}
        scaled = await client.scale("iris", 0, 2)
        assert (scaled.spec.scaling.min_replicas, scaled.spec.scaling.max_replicas) == (0, 2)
        assert (await client.scale_to_zero("iris")).desired_replicas == 0
        assert (await client.pause("iris")).status is EndpointStatus.PAUSED
        assert (await client.resume("iris")).status is not EndpointStatus.PAUSED
        assert (await client.delete("iris")).status is EndpointStatus.DELETING
        podium.gone("iris")
        with pytest.raises(NotFound):
            await client.endpoint("iris")


async def test_bad_input_and_failures_are_the_sync_clients(
    pushed: PodiumClient, podium: InProcessPodium
) -> None:
    async with AsyncClient(podium.url) as client:
        with pytest.raises(Invalid) as bounds:  # checked locally, as the sync client does
            await client.scale("iris", 3, 1)
        assert bounds.value.field == "scaling.max_replicas"
        with pytest.raises(Invalid) as spec:
            await client.deploy({**SPEC, "scaling": {"max_replicas": 0}})
        assert spec.value.field == "scaling.max_replicas"
        await client.deploy(SPEC)
        podium.fail("iris", "no such file: model.skops")
        with pytest.raises(LoadError, match=r"model\.skops"):
            await client.wait_for("iris", {"running"})
