"""Autoscaling against a real `podium up`: to zero and back, wake, scale up under load,
scale changes in place. Every wait is on a condition with a generous deadline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from podium.client import PodiumClient
from podium.core.errors import Conflict
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

PING = {"inputs": "ping"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("podium")) as s:
        yield s


@pytest.fixture(scope="module")
def bundle(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A python bundle whose predict sleeps 50 ms, pushed once as `sleepy`."""
    folder = write_python_bundle(tmp_path_factory.mktemp("bundle") / "sleepy", sleep_s=0.05)
    with server.client() as c:
        c.push_model(folder, "sleepy", framework="python")
    return "sleepy"


def deploy(c: PodiumClient, name: str, model: str, **extra: Any) -> None:
    c.deploy({"name": name, "model": model, "framework": "python", **extra})


def status_is(c: PodiumClient, name: str, status: EndpointStatus) -> bool:
    return c.endpoint(name).status is status


def scaled(c: PodiumClient, name: str) -> list[str]:
    return [e.message for e in c.events(name) if e.kind is EventKind.SCALED]


def ready_pids(c: PodiumClient, name: str) -> set[int | None]:
    return {r.pid for r in c.endpoint(name).replicas if r.state is ReplicaState.READY}


def test_scaled_to_zero_wakes_and_goes_back_to_zero(server: ServerProcess, bundle: str) -> None:
    scaling = {
        "min_replicas": 0,
        "max_replicas": 2,
        "scale_to_zero_after": "2s",
        "stable_window": "2s",
        "panic_window": "1s",
    }
    with server.client() as c:
        deploy(c, "nap", bundle, scaling=scaling)
        c.wait_for("nap", {EndpointStatus.SCALED_TO_ZERO}, timeout=60)
        assert c.endpoint("nap").replicas == []
        woken = c.wake("nap")
        assert woken.desired_replicas == 1
        wait_running(c, "nap")
        assert c.invoke("nap", PING)["echo"] == "ping"
        c.wait_for("nap", {EndpointStatus.SCALED_TO_ZERO}, timeout=90)
        ep = c.endpoint("nap")
        assert ep.desired_replicas == 0 and ep.replicas == []
        messages = scaled(c, "nap")
        assert "scaled 0→1: woken by user" in messages
        assert any(m.startswith("scaled 1→0: idle for ") for m in messages), messages
        assert ep.revision == 1


def test_a_paused_endpoint_does_not_wake(server: ServerProcess, bundle: str) -> None:
    with server.client() as c:
        deploy(c, "held", bundle, scaling={"min_replicas": 0, "max_replicas": 1})
        c.pause("held")
        with pytest.raises(Conflict, match="resume it first"):
            c.wake("held")
        assert c.endpoint("held").desired_replicas == 0
        c.delete("held")


def test_cli_wake_matches_the_api(server: ServerProcess, bundle: str) -> None:
    with server.client() as c:
        deploy(c, "cli-nap", bundle, scaling={"min_replicas": 0, "max_replicas": 1})
        c.wait_for("cli-nap", {EndpointStatus.SCALED_TO_ZERO}, timeout=60)
    server.cli("wake", "cli-nap")
    with server.client() as c:
        assert c.endpoint("cli-nap").desired_replicas == 1
        wait_running(c, "cli-nap")
        c.delete("cli-nap")


def test_load_step_scales_up_with_the_figures_in_the_event(
    server: ServerProcess, bundle: str
) -> None:
    scaling = {
        "min_replicas": 1,
        "max_replicas": 3,
        "target_concurrency": 2,
        "stable_window": "6s",
        "panic_window": "2s",
    }
    with server.client() as c:
        deploy(c, "busy", bundle, scaling=scaling)
        wait_running(c, "busy")
    stop = threading.Event()
    failures: list[str] = []

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http:
            while not stop.is_set():
                resp = http.post("/endpoints/busy/", json=PING)
                if resp.status_code != 200:
                    failures.append(f"HTTP {resp.status_code}: {resp.text[:200]}")

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        with server.client() as c:
            wait_until(lambda: c.endpoint("busy").desired_replicas > 1, 60, "a scale-up")
            wait_until(lambda: c.endpoint("busy").ready_replicas > 1, 60, "a second replica")
            messages = scaled(c, "busy")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    up = [m for m in messages if m.startswith("scaled 1→")]
    assert up, messages
    assert "in flight over" in up[0] and "target 2 per replica" in up[0], up[0]
    assert failures == []
    with server.client() as c:
        assert c.endpoint("busy").revision == 1
        c.delete("busy")


def test_scaling_changes_apply_in_place(server: ServerProcess, bundle: str) -> None:
    with server.client() as c:
        deploy(c, "steady", bundle, scaling={"min_replicas": 1, "max_replicas": 1})
        wait_running(c, "steady")
        (first,) = ready_pids(c, "steady")
        c.update("steady", {"scaling": {"min_replicas": 2, "max_replicas": 3}})
        wait_until(lambda: len(ready_pids(c, "steady")) == 2, 90, "two ready replicas")
        ep = c.endpoint("steady")
        assert ep.revision == 1 and ep.desired_replicas == 2
        assert first in ready_pids(c, "steady")  # the running replica was not restarted
        assert [r.number for r in c.revisions("steady")] == [1]
        c.scale("steady", 1, 1)
        wait_until(lambda: len(c.endpoint("steady").replicas) == 1, 90, "one replica left")
        ep = c.endpoint("steady")
        assert ep.revision == 1 and ep.desired_replicas == 1
        assert ready_pids(c, "steady") == {first}  # the newest was drained, not the first
        c.delete("steady")


GAUGE_MODEL = """\
from prometheus_client import Gauge


class Model:
    def load(self, path):
        # A queue the model keeps itself, exposed on the replica's /metrics.
        Gauge("tokens_waiting", "tokens queued inside the model").set(2500)

    def predict(self, inputs, parameters):
        return inputs
"""


def test_a_custom_gauge_rule_scales_on_what_the_replica_exposes(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No traffic at all: the rule alone (2500 tokens waiting, target 1000 per replica)
    asks for 3 replicas, read from the real replica's /metrics."""
    folder = tmp_path_factory.mktemp("gauge") / "gauge"
    folder.mkdir()
    (folder / "model.py").write_text(GAUGE_MODEL, encoding="utf-8")
    rule = {"metric": "custom", "gauge": "tokens_waiting", "target": 1000}
    scaling = {"min_replicas": 1, "max_replicas": 3, "rules": [rule],
               "stable_window": "2s", "panic_window": "1s"}  # fmt: skip
    with server.client() as c:
        c.push_model(folder, "gauge", framework="python")
        deploy(c, "gauge", "gauge", scaling=scaling)
        wait_until(lambda: c.endpoint("gauge").desired_replicas == 3, timeout=60, what="3 replicas")
        (message,) = [m for m in scaled(c, "gauge") if m.startswith("scaled 1→3")]
        c.delete("gauge")
    assert "gauge tokens_waiting 2500" in message and "target 1000" in message
