"""A hung model is noticed: a real server, real replicas whose predict never returns on one
input. The replica says it is hung (or cannot answer at all), the controller takes it out
of routing, kills it, starts a replacement and records `replica_hung`; other requests are
served meanwhile and afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from podium.core.phases import EndpointStatus, EventKind
from podium.core.schemas import EventPublic
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

BUNDLE = """\
import re


class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        if inputs == "spin":
            while True:  # pure Python: the GIL is still handed round
                pass
        if inputs == "regex":  # exponential backtracking in C, holding the GIL throughout
            re.match(r"(a|aa)*c", "a" * 64)
        return {"echo": inputs}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # hung once a call has run timeout_s + 1 s
    with running_server(tmp_path_factory.mktemp("podium"), PODIUM_HUNG_GRACE_S="1") as s:
        yield s


def deploy(server: ServerProcess, tmp_path: Path, name: str, **spec: object) -> None:
    bundle = tmp_path / name
    bundle.mkdir()
    (bundle / "model.py").write_text(BUNDLE, encoding="utf-8")
    with server.client() as c:
        c.push_model(bundle, name, framework="python")
        c.deploy({"name": name, "model": name, "framework": "python", "timeout_s": 2, **spec})
        wait_running(c, name)


def send(server: ServerProcess, name: str, inputs: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/endpoints/{name}/",
        headers=server.headers,
        json={"inputs": inputs},
        timeout=60,
    )


def in_background(server: ServerProcess, name: str, inputs: str) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    threading.Thread(target=lambda: answers.append(send(server, name, inputs)), daemon=True).start()
    return answers


def events(server: ServerProcess, name: str, kind: EventKind) -> list[EventPublic]:
    with server.client() as c:
        return [e for e in c.events(name) if e.kind is kind]


def test_a_model_spinning_in_python_is_restarted_while_the_other_replica_serves(
    server: ServerProcess, tmp_path: Path
) -> None:
    liveness = {"path": "/health/live", "period_s": 1, "timeout_s": 2, "failure_threshold": 3}
    deploy(
        server, tmp_path, "spin", liveness=liveness, scaling={"min_replicas": 2, "max_replicas": 2}
    )
    with server.client() as c:
        before = {r.replica_id: r.pid for r in c.endpoint("spin").replicas}
    assert len(before) == 2
    hanging = in_background(server, "spin", "spin")

    def hung_while_serving() -> bool:
        answer = send(server, "spin", "fine")
        assert answer.status_code == 200, answer.text  # traffic flows while one replica hangs
        return bool(events(server, "spin", EventKind.REPLICA_HUNG))

    wait_until(hung_while_serving, 120, "replica_hung")
    wait_until(lambda: bool(hanging), 60, "the hung request's answer")
    assert hanging[0].status_code == 504
    assert "did not answer within 2 s" in hanging[0].json()["detail"]

    (hung,) = events(server, "spin", EventKind.REPLICA_HUNG)
    assert hung.data["replica_id"] in before and hung.data["reason"] == "hung"
    assert "hung: the oldest call into the python runtime has run for" in hung.message
    assert "(limit 3 s)" in hung.message  # timeout_s 2 + PODIUM_HUNG_GRACE_S 1
    assert hung.data["oldest_call_s"] > 3 and hung.data["limit_s"] == 3

    def replaced() -> bool:
        with server.client() as c:
            ep = c.endpoint("spin")
        ids = {r.replica_id for r in ep.replicas}
        return ep.ready_replicas == 2 and hung.data["replica_id"] not in ids

    wait_until(replaced, 120, "a replacement replica")
    restarted = events(server, "spin", EventKind.REPLICA_RESTARTED)
    assert len(restarted) == 1
    with server.client() as c:
        assert c.endpoint("spin").status is EndpointStatus.RUNNING
    assert not psutil.pid_exists(before[hung.data["replica_id"]] or -1)  # no spinning leftover
    for _ in range(10):
        assert send(server, "spin", "fine").status_code == 200
    with server.client() as c:
        c.delete("spin")


def test_a_model_holding_the_gil_is_restarted_when_liveness_gets_no_answer(
    server: ServerProcess, tmp_path: Path
) -> None:
    liveness = {"path": "/health/live", "period_s": 1, "timeout_s": 1, "failure_threshold": 2}
    deploy(server, tmp_path, "regex", liveness=liveness)
    hanging = in_background(server, "regex", "regex")
    wait_until(lambda: bool(events(server, "regex", EventKind.REPLICA_HUNG)), 120, "replica_hung")
    (hung,) = events(server, "regex", EventKind.REPLICA_HUNG)
    assert "hung: no answer to liveness probes for" in hung.message  # past timeout_s + grace
    assert "holding the GIL" in hung.message
    with server.client() as c:
        wait_running(c, "regex")
    assert len(events(server, "regex", EventKind.REPLICA_RESTARTED)) == 1
    wait_until(lambda: bool(hanging), 60, "the hung request's answer")
    assert hanging[0].status_code in (502, 504)  # timed out, or cut when the replica died
    assert send(server, "regex", "fine").json() == {"echo": "fine"}
    with server.client() as c:
        c.delete("regex")
