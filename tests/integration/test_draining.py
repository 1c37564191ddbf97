"""Draining on a real server: a long request and a stream in flight when their replica
leaves routing (a rolling update, a scale-down) both complete, with their full bodies.

The server stops replicas with a 1 s SIGTERM → SIGKILL grace (`PODIUM_STOP_TIMEOUT_S`),
shorter than the requests, so only the drain (wait until the gateway has no request in
flight to the replica) can let them finish: uvicorn's own graceful shutdown cannot.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.core.phases import EventKind, ReplicaState
from tests.support.lifecycle_models import write_lifecycle_bundle
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

LONG_S = 5.0  # the long request's model call
PARTS, GAP_S = 11, 0.5  # the stream: 11 parts, 5 s


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("podium"), PODIUM_STOP_TIMEOUT_S="1") as s:
        yield s


@dataclass
class InFlight:
    """A long request and a stream to an endpoint, each in its own thread."""

    url: str
    started: Path  # created by the model when the long call begins
    headers: dict[str, str] = field(default_factory=dict)
    long_status: int | None = None
    long_body: Any = None
    parts: list[Any] = field(default_factory=list)
    stream_status: int | None = None
    replicas: set[str] = field(default_factory=set)  # x-podium-replica of both
    errors: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._long, daemon=True),
            threading.Thread(target=self._stream, daemon=True),
        ]
        for t in self._threads:
            t.start()
        wait_until(self.started.exists, timeout=60, what="the long request in the model")
        wait_until(lambda: bool(self.parts) or bool(self.errors), timeout=60, what="a part")
        assert not self.errors, self.errors

    def join(self) -> None:
        for t in self._threads:
            t.join(120)
            assert not t.is_alive()

    def _long(self) -> None:
        body = {"inputs": "long", "parameters": {"sleep_s": LONG_S, "started": str(self.started)}}
        try:
            resp = httpx.post(self.url, json=body, headers=self.headers, timeout=120)
        except httpx.HTTPError as e:
            self.errors.append(f"long request: {type(e).__name__}: {e}")
            return
        self.long_status = resp.status_code
        self.replicas.add(resp.headers.get("x-podium-replica", "?"))
        self.long_body = resp.json() if resp.status_code == 200 else resp.text

    def _stream(self) -> None:
        body = {"inputs": "s", "parameters": {"parts": PARTS, "gap_s": GAP_S}, "stream": True}
        try:
            with httpx.stream(
                "POST", self.url, json=body, headers=self.headers, timeout=120
            ) as resp:
                self.stream_status = resp.status_code
                self.replicas.add(resp.headers.get("x-podium-replica", "?"))
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        self.parts.append(json.loads(line[5:]))
        except httpx.HTTPError as e:
            self.errors.append(f"stream: {type(e).__name__}: {e}")

    def check_complete(self, version: int) -> None:
        assert self.errors == []
        assert (self.long_status, self.long_body["version"], self.long_body["echo"]) == (
            200,
            version,
            "long",
        ), self.long_body
        assert self.stream_status == 200
        assert self.parts == [{"version": version, "part": i} for i in range(PARTS)]


def replica_ids(server: ServerProcess, name: str) -> set[str]:
    with server.client() as c:
        return {r.replica_id for r in c.endpoint(name).replicas}


def stopped_ids(server: ServerProcess, name: str) -> list[str]:
    with server.client() as c:
        return [
            str(e.data["replica_id"]) for e in c.events(name) if e.kind is EventKind.REPLICA_STOPPED
        ]


def test_a_rolling_update_drains_a_long_request_and_a_stream(
    server: ServerProcess, tmp_path: Path
) -> None:
    with server.client() as c:
        c.push_model(write_lifecycle_bundle(tmp_path / "v1", version=1), "drainer")
        c.push_model(write_lifecycle_bundle(tmp_path / "v2", version=2), "drainer")
        c.deploy({"name": "drain-roll", "model": "drainer:1", "framework": "python"})
        wait_running(c, "drain-roll")
    (old,) = replica_ids(server, "drain-roll")
    flight = InFlight(f"{server.url}/endpoints/drain-roll/", tmp_path / "started", server.headers)
    flight.start()
    with server.client() as c:
        c.update("drain-roll", {"model": "drainer:2"})
        # The new revision takes over while both requests still run on the old replica.
        wait_until(
            lambda: any(
                r.revision == 2 and r.state is ReplicaState.READY
                for r in c.endpoint("drain-roll").replicas
            ),
            what="revision 2 ready",
        )
    flight.join()
    flight.check_complete(version=1)
    assert flight.replicas == {old}
    with server.client() as c:
        c.wait_rolled_out("drain-roll", 2, timeout=60)
        assert c.invoke("drain-roll", {"inputs": "after"})["version"] == 2
    assert stopped_ids(server, "drain-roll") == [old]


def test_a_scale_down_drains_a_long_request_and_a_stream(
    server: ServerProcess, tmp_path: Path
) -> None:
    with server.client() as c:
        c.push_model(write_lifecycle_bundle(tmp_path / "m"), "shrinker")
        c.deploy(
            {
                "name": "drain-scale",
                "model": "shrinker",
                "framework": "python",
                # One request per replica at a time: the long one and the stream are on
                # different replicas, so whichever is drained has one of them in flight.
                "max_concurrency": 1,
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "drain-scale")
        wait_until(
            lambda: (
                sum(r.state is ReplicaState.READY for r in c.endpoint("drain-scale").replicas) == 2
            ),
            what="2 ready replicas",
        )
    both = replica_ids(server, "drain-scale")
    flight = InFlight(f"{server.url}/endpoints/drain-scale/", tmp_path / "started", server.headers)
    flight.start()
    with server.client() as c:
        c.scale("drain-scale", 1, 1)
    flight.join()
    flight.check_complete(version=1)
    assert flight.replicas == both  # each replica served one: the drained one included
    wait_until(lambda: len(replica_ids(server, "drain-scale")) == 1, what="one replica left")
    (gone,) = both - replica_ids(server, "drain-scale")
    assert stopped_ids(server, "drain-scale") == [gone]
