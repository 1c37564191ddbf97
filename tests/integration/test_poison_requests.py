"""A request that crashes its replica costs that replica only: one crash, one 502, no
crash loop; an exit code of 3 after the model loaded is a crash, not a load failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.server import ServerProcess, run_load, running_server, wait_running, wait_until

MODEL = """\
import os
import signal


class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        if inputs == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if inputs == "exit3":
            os._exit(3)
        return {"echo": inputs}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Threshold 2: two crashes counted in a row would fail the endpoint.
    with running_server(
        tmp_path_factory.mktemp("podium"),
        PODIUM_RESTART_BACKOFF_S="0.2",
        PODIUM_CRASH_LOOP_THRESHOLD="2",
    ) as s:
        yield s


def deploy(server: ServerProcess, tmp_path: Path, name: str, replicas: int) -> None:
    bundle = tmp_path / name
    bundle.mkdir()
    (bundle / "model.py").write_text(MODEL, encoding="utf-8")
    with server.client() as c:
        c.push_model(bundle, name, framework="python")
        scaling = {"min_replicas": replicas, "max_replicas": replicas}
        c.deploy({"name": name, "model": name, "framework": "python", "scaling": scaling})
        wait_running(c, name)
    wait_until(lambda: ready(server, name) == replicas, timeout=120, what="replicas ready")


def ready(server: ServerProcess, name: str) -> int:
    with server.client() as c:
        return sum(r.state is ReplicaState.READY for r in c.endpoint(name).replicas)


def crashes(server: ServerProcess, name: str) -> list[str]:
    with server.client() as c:
        return [e.message for e in c.events(name) if e.kind is EventKind.REPLICA_CRASHED]


def failed_ever(server: ServerProcess, name: str) -> bool:
    with server.client() as c:
        statuses = [e.data.get("to") for e in c.events(name) if e.kind is EventKind.STATUS]
        return EndpointStatus.FAILED.value in statuses


def poison(server: ServerProcess, name: str, what: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/endpoints/{name}/",
        headers=server.headers,
        json={"inputs": what},
        timeout=60,
    )


def test_poison_request_crashes_one_replica_only(server: ServerProcess, tmp_path: Path) -> None:
    deploy(server, tmp_path, "poison", 3)
    r = poison(server, "poison", "segfault")
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert "the replica crashed while serving this request" in r.json()["detail"]
    wait_until(lambda: len(crashes(server, "poison")) == 1, what="the crash event")

    report = run_load(
        f"{server.url}/endpoints/poison/",
        {"inputs": "ping"},
        seconds=30,
        clients=4,
        headers=server.headers,
    )
    assert report.failures == [], report.failures[:5]
    assert report.ok > 0
    assert len(crashes(server, "poison")) == 1  # the poison reached one replica, once
    with server.client() as c:
        assert c.endpoint("poison").status is EndpointStatus.RUNNING

    # A second poison request, after the endpoint served: still no crash loop.
    assert poison(server, "poison", "segfault").status_code == 502
    wait_until(lambda: len(crashes(server, "poison")) == 2, what="the second crash event")
    wait_until(lambda: ready(server, "poison") == 3, timeout=120, what="a replacement")
    with server.client() as c:
        assert c.endpoint("poison").status is EndpointStatus.RUNNING
    assert not failed_ever(server, "poison")


def test_exit_code_3_after_ready_is_a_crash(server: ServerProcess, tmp_path: Path) -> None:
    deploy(server, tmp_path, "exit3", 1)
    r = poison(server, "exit3", "exit3")
    assert r.status_code == 502
    assert "crashed while serving this request" in r.json()["detail"]
    wait_until(lambda: len(crashes(server, "exit3")) == 1, what="the crash event")
    (message,) = crashes(server, "exit3")
    assert "failed to load" not in message and "exit code 3" in message
    wait_until(lambda: ready(server, "exit3") == 1, timeout=120, what="a replacement")
    with server.client() as c:
        kinds = [e.kind for e in c.events("exit3")]
        assert EventKind.REPLICA_RESTARTED in kinds
        assert c.invoke("exit3", {"inputs": "ping"}) == {"echo": "ping"}
        assert c.endpoint("exit3").status is EndpointStatus.RUNNING
    assert not failed_ever(server, "exit3")


def test_crashes_while_serving_with_successes_between_are_no_crash_loop(
    server: ServerProcess, tmp_path: Path
) -> None:
    deploy(server, tmp_path, "twice", 3)
    assert poison(server, "twice", "segfault").status_code == 502
    with server.client() as c:
        for _ in range(5):  # served successfully between the crashes
            assert c.invoke("twice", {"inputs": "ping"}) == {"echo": "ping"}
    assert poison(server, "twice", "segfault").status_code == 502
    wait_until(lambda: len(crashes(server, "twice")) == 2, what="two crash events")
    wait_until(lambda: ready(server, "twice") == 3, timeout=120, what="replacements")
    with server.client() as c:
        assert c.endpoint("twice").status is EndpointStatus.RUNNING
    assert not failed_ever(server, "twice")


def test_crashes_while_serving_with_no_success_between_are_a_crash_loop(
    server: ServerProcess, tmp_path: Path
) -> None:
    deploy(server, tmp_path, "always", 3)
    for _ in range(2):  # the threshold: every request it got crashed a replica
        assert poison(server, "always", "segfault").status_code == 502
    wait_until(lambda: failed_ever(server, "always"), timeout=60, what="failed")
    with server.client() as c:
        reason = c.endpoint("always").status_reason or ""
    assert "crash loop" in reason and "while serving" in reason
