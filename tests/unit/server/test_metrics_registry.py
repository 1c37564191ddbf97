"""The server's one Prometheus registry: `/metrics` on a built Podium serves the gateway's,
the controller's, the records writer's and the process's families from `Podium.registry`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.inproc import InProcessPodium, Served, serving


@pytest.fixture(scope="module")
def _served() -> Iterator[Served]:
    with serving() as served:
        yield served


@pytest.fixture
def podium(_served: Served, tmp_path: Path) -> Iterator[InProcessPodium]:
    yield _served.fresh(tmp_path / "home")
    _served.close_current()


def families(podium: InProcessPodium) -> dict[str, dict[tuple[str, ...], float]]:
    r = httpx.get(podium.url + "/metrics", headers=podium.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        f.name: {(*sorted(s.labels.values()), s.name): s.value for s in f.samples}
        for f in text_string_to_metric_families(r.text)
    }


def test_metrics_serves_the_gateway_and_the_controller_from_one_registry(
    podium: InProcessPodium,
) -> None:
    before = families(podium)
    assert before["podium_gateway_unrouted_requests"] == {
        ("podium_gateway_unrouted_requests_total",): 0
    }
    assert httpx.post(podium.url + "/endpoints/nowhere/", headers=podium.headers).status_code == 404
    got = families(podium)
    # the gateway's families (its meters, through the server's registry)
    assert got["podium_gateway_unrouted_requests"] == {
        ("podium_gateway_unrouted_requests_total",): 1
    }
    assert "podium_gateway_request_duration_seconds" in got
    # the controller's (it is not running here: its counters are zero, its families there)
    assert got["podium_controller_passes"] == {
        ("ok", "podium_controller_passes_total"): 0,
        ("failed", "podium_controller_passes_total"): 0,
    }
    assert {"podium_controller_pass_seconds", "podium_controller_replicas"} <= got.keys()
    assert "podium_controller_scaling_decisions" in got
    # the records writer's
    assert got["podium_request_records_written"] == {("podium_request_records_written_total",): 0}
    # the server process's own
    assert got["process_resident_memory_bytes"][("process_resident_memory_bytes",)] > 0


def test_the_registry_is_the_servers_and_each_family_appears_once(
    podium: InProcessPodium,
) -> None:
    server = podium.podium
    names = [m.name for m in server.registry.collect()]
    assert len(names) == len(set(names)), names
    assert {
        "podium_gateway_requests",
        "podium_controller_passes",
        "podium_request_records_written",
    } <= set(names)
