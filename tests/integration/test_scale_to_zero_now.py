"""Scale to zero now, against a real `podium up`: an endpoint with `min_replicas: 1` is
scaled to zero by the user, stays there (its minimum does not bring it back) through many
controller passes, is woken by one request (held while a replica starts, then served), and
from then on its minimum holds again.

Every wait is on a condition with a generous deadline; nothing asserts on a duration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.client import Conflict, PodiumClient
from podium.core.phases import EndpointStatus, EventKind
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

NAME = "parked"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    with running_server(tmp_path_factory.mktemp("podium")) as s, s.client() as c:
        c.push_model(write_python_bundle(Path(tmp) / "quick"), "quick")
        yield s


def passes(server: ServerProcess) -> float:
    """Controller passes run so far (the server's /metrics)."""
    text = httpx.get(f"{server.url}/metrics", headers=server.headers, timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "podium_controller_passes_total"
    )


def scaled(c: PodiumClient) -> list[str]:
    return [e.message for e in c.events(NAME) if e.kind is EventKind.SCALED]


def test_scale_to_zero_now_stays_until_a_request_then_min_holds(server: ServerProcess) -> None:
    with server.client() as c:
        spec = {"name": NAME, "model": "quick", "framework": "python"}
        c.deploy({**spec, "scaling": {"min_replicas": 1, "max_replicas": 2}})
        wait_running(c, NAME)

        assert c.scale_to_zero(NAME).desired_replicas == 0
        c.wait_for(NAME, {EndpointStatus.SCALED_TO_ZERO}, timeout=60)
        wait_until(lambda: c.endpoint(NAME).replicas == [], 60, "no replica left")
        # It stays at zero through many controller passes, although min_replicas is 1.
        seen = passes(server)
        wait_until(lambda: passes(server) >= seen + 10, 60, "ten more controller passes")
        ep = c.endpoint(NAME)
        assert (ep.status, ep.desired_replicas, ep.replicas) == (
            EndpointStatus.SCALED_TO_ZERO,
            0,
            [],
        )
        assert not any("min_replicas is 1" in m for m in scaled(c))

        # One request wakes it: held while a replica starts, then served.
        answer = c.invoke(NAME, {"inputs": "wake"})
        assert answer == {"version": 1, "echo": "wake"}
        assert any(m.startswith("scaled 0→1") and "held" in m for m in scaled(c)), scaled(c)
        # From then on its minimum holds again.
        ep = wait_running(c, NAME)
        assert ep.desired_replicas == 1

        # A paused endpoint has nothing to scale to zero: 409.
        c.pause(NAME)
        with pytest.raises(Conflict, match="paused"):
            c.scale_to_zero(NAME)
        c.delete(NAME)
