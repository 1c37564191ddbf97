"""A failing model marks its endpoint failed with the reason; nothing else is affected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.models import train_iris_pickle, train_iris_skops, write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

SAMPLE = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}
TINY = {"name": "tiny", "cpus": 1, "memory_mb": 250, "price_per_hour": 0.01}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    types = [
        {"name": "cpu-small", "cpus": 1, "memory_mb": 2048, "price_per_hour": 0.05},
        TINY,
    ]
    with running_server(
        tmp_path_factory.mktemp("podium"),
        PODIUM_INSTANCE_TYPES=json.dumps(types),
        PODIUM_RESTART_BACKOFF_S="0.2",
        PODIUM_CRASH_LOOP_THRESHOLD="3",
    ) as s:
        yield s


def wait_failed(server: ServerProcess, name: str) -> str:
    def failed() -> bool:
        with server.client() as c:
            return c.endpoint(name).status is EndpointStatus.FAILED

    wait_until(failed, timeout=90, what=f"{name} failed")
    with server.client() as c:
        reason = c.endpoint(name).status_reason
    assert reason
    return reason


def test_load_failure_fails_only_that_endpoint(server: ServerProcess, tmp_path: Path) -> None:
    with server.client() as c:
        c.push_model(train_iris_skops(tmp_path / "iris"), "good", framework="sklearn")
        c.deploy({"name": "good", "model": "good", "framework": "sklearn"})
        c.push_model(write_python_bundle(tmp_path / "bad", fail_load="weights are corrupt"), "bad")
        c.deploy({"name": "bad", "model": "bad", "framework": "python"})
        wait_running(c, "good")
    reason = wait_failed(server, "bad")
    assert "weights are corrupt" in reason
    with server.client() as c:
        assert c.invoke("good", SAMPLE) == [0]  # setosa
        messages = [e.message for e in c.events("bad")]
        assert any("weights are corrupt" in m for m in messages)
        # No restart storm: a load failure is deterministic, so exactly one replica was tried.
        events = c.events("bad")
        starts = [
            e for e in events if e.kind in (EventKind.REPLICA_STARTING, EventKind.REPLICA_RESTARTED)
        ]
        assert [e.kind for e in starts] == [EventKind.REPLICA_STARTING]
        (crashed,) = [e for e in events if e.kind is EventKind.REPLICA_CRASHED]
        assert crashed.data["replica_id"] == starts[0].data["replica_id"]
        assert crashed.data["reason"] == "load_failed"
        assert "failed to load its model" in crashed.message
        bad = c.endpoint("bad")
        assert bad.replicas == []
        assert (
            reason
            == "revision 1 failed to load: Model.load() raised RuntimeError: weights are corrupt"
        )
    assert httpx.get(f"{server.url}/api/v1/health", headers=server.headers).status_code == 200


def test_pickle_needs_trust_pickle(server: ServerProcess, tmp_path: Path) -> None:
    with server.client() as c:
        c.push_model(train_iris_pickle(tmp_path / "pkl"), "pickled", framework="sklearn")
        c.deploy({"name": "pickled", "model": "pickled", "framework": "sklearn"})
    assert "trust_pickle" in wait_failed(server, "pickled")
    with server.client() as c:
        c.update("pickled", {"trust_pickle": True})
        wait_running(c, "pickled")
        assert c.invoke("pickled", SAMPLE) == [0]  # setosa


def test_crash_loop_fails_the_endpoint_without_a_restart_storm(
    server: ServerProcess, tmp_path: Path
) -> None:
    bundle = tmp_path / "crasher"
    bundle.mkdir()
    (bundle / "model.py").write_text(
        "import os\n\nclass Model:\n    def load(self, path):\n"
        "        print('the disk is on fire', flush=True)\n        os._exit(7)\n\n"
        "    def predict(self, inputs, parameters):\n        return inputs\n"
    )
    with server.client() as c:
        c.push_model(bundle, "crasher", framework="python")
        c.deploy({"name": "crasher", "model": "crasher", "framework": "python"})
    reason = wait_failed(server, "crasher")
    assert "crash loop" in reason and "exit code 7" in reason
    with server.client() as c:
        crashes = [e for e in c.events("crasher") if e.kind is EventKind.REPLICA_CRASHED]
    assert len(crashes) == 3
    for crash in crashes:  # the exit code and the replica's last log lines
        assert "exit code 7" in crash.message and "the disk is on fire" in crash.message
        assert crash.data["exit_code"] == 7


def test_a_failing_liveness_probe_restarts_the_replica(
    server: ServerProcess, tmp_path: Path
) -> None:
    liveness = {"path": "/no-such-route", "period_s": 0.2, "failure_threshold": 2}
    with server.client() as c:
        c.push_model(write_python_bundle(tmp_path / "sick"), "sick")
        c.deploy({"name": "sick", "model": "sick", "framework": "python", "liveness": liveness})

    def restarted() -> bool:
        with server.client() as c:
            kinds = [e.kind for e in c.events("sick")]
        return EventKind.REPLICA_UNHEALTHY in kinds and EventKind.REPLICA_RESTARTED in kinds

    wait_until(restarted, timeout=60, what="an unhealthy replica and its restart")
    with server.client() as c:
        unhealthy = next(e for e in c.events("sick") if e.kind is EventKind.REPLICA_UNHEALTHY)
        c.delete("sick")
    assert "liveness probe failed 2 times: HTTP 404" in unhealthy.message


HOG = """\
class Model:
    def load(self, path):
        self.hoard = []

    def predict(self, inputs, parameters):
        if inputs == "hog":  # 400 MB against the tiny type's 250 MiB
            self.hoard.append(b"\\x01" * (400 * 1024 * 1024))
        return {"echo": inputs}
"""


def test_memory_limit_kills_and_reports_out_of_memory(
    server: ServerProcess, tmp_path: Path
) -> None:
    bundle = tmp_path / "hog"
    bundle.mkdir()
    (bundle / "model.py").write_text(HOG, encoding="utf-8")
    with server.client() as c:
        c.push_model(bundle, "hog", framework="python")
        c.deploy({"name": "hog", "model": "hog", "framework": "python", "instance_type": "tiny"})
        (first,) = wait_running(c, "hog").replicas
    r = httpx.post(
        f"{server.url}/endpoints/hog/",
        headers=server.headers,
        json={"inputs": "hog"},
        timeout=60,
    )
    assert r.status_code == 507, r.text
    assert r.json()["detail"] == (
        "the replica ran out of memory serving this request (limit 250 MiB)"
    )

    def oom_reported() -> bool:
        with server.client() as c:
            return any(e.kind is EventKind.REPLICA_OOM for e in c.events("hog"))

    wait_until(oom_reported, timeout=60, what="an out-of-memory event")
    with server.client() as c:
        (oom,) = [e for e in c.events("hog") if e.kind is EventKind.REPLICA_OOM]
    assert oom.message.startswith(
        f"replica {first.replica_id} ran out of memory: a request needed more memory than "
        "the kernel limit allows; limit 250 MiB (instance type tiny)"
    )
    assert oom.data["replica_id"] == first.replica_id
    assert oom.data["reason"] == "oom"
    assert oom.data["revision"] == 1

    # A replacement (a crash while serving, not a failure of the endpoint) serves.
    def replaced() -> bool:
        with server.client() as c:
            ep = c.endpoint("hog")
        return ep.status is EndpointStatus.RUNNING and any(
            r.replica_id != first.replica_id and r.state is ReplicaState.READY for r in ep.replicas
        )

    wait_until(replaced, timeout=90, what="a replacement replica")
    with server.client() as c:
        assert c.invoke("hog", {"inputs": "ping"}) == {"echo": "ping"}
        (second,) = c.endpoint("hog").replicas
        restarted = [e for e in c.events("hog") if e.kind is EventKind.REPLICA_RESTARTED]
        c.delete("hog")
    assert second.replica_id != first.replica_id and second.pid != first.pid
    assert [e.data["replica_id"] for e in restarted] == [second.replica_id]
