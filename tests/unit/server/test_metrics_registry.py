"""The server's one Prometheus registry: `/metrics` on a built Podium serves the gateway's,
the controller's, the metrics history's, the records writer's and the process's families
from `Podium.registry`; every name docs/metrics.md lists for the server is served."""

from __future__ import annotations

import re
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
    # the metrics history's latest sample (none taken yet: the families, no series)
    assert got["podium_metrics_samples"] == {
        ("ok", "podium_metrics_samples_total"): 0,
        ("failed", "podium_metrics_samples_total"): 0,
    }
    assert {
        "podium_replica_cpu_percent",
        "podium_replica_memory_rss_bytes",
        "podium_replica_gpu_utilization_percent",
        "podium_replica_gpu_memory_bytes",
        "podium_endpoint_replicas_ready",
        "podium_endpoint_replicas_desired",
    } <= got.keys()
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
        "podium_metrics_samples",
        "podium_request_records_written",
    } <= set(names)


def test_every_server_metric_the_docs_name_is_served(podium: InProcessPodium) -> None:
    """docs/metrics.md's server section names each family the server's /metrics serves (no
    drift), in its tables `| `name` | type | labels | meaning |`."""
    docs = (Path(__file__).parents[3] / "docs" / "metrics.md").read_text()
    server_part = docs.split("## The server's `/metrics`")[1].split("\n## ")[0]
    names = set(re.findall(r"^\| `(podium_[a-z0-9_]+)`", server_part, flags=re.M))
    assert "podium_replica_cpu_percent" in names and len(names) > 20
    text = httpx.get(podium.url + "/metrics", headers=podium.headers).text
    served = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    missing = {n for n in names if n.removesuffix("_total") not in served and n not in served}
    assert not missing, f"documented but not served: {sorted(missing)}"
