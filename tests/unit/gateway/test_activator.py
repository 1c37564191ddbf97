"""The activator over real sockets: held requests, replica slots, limits and timeouts.

Stand-in replicas are `Gate` apps: every request waits at the gate until the test opens
it, and the app counts how many requests it serves at once (its peak) and in which order
they arrived. Every wait is on a count, never on a duration.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointLoad, EndpointRoute, ReplicaRoute
from tests.unit.gateway.conftest import RunningGateway, Servers
from tests.unit.gateway.servers import ServerThread, stop_all, wait_until

WAIT = "x-podium-wait-timeout"


class Gate:
    """A replica whose requests wait until `open()`; it records its peak concurrency."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self.active = 0
        self.peak = 0
        self.order: list[str] = []  # request bodies, in arrival order
        self._lock = threading.Lock()
        self._is_open = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: asyncio.Event | None = None

    def open(self) -> None:
        """Let every waiting (and later) request through."""
        self._is_open.set()
        if self._loop is not None and self._open is not None:
            self._loop.call_soon_threadsafe(self._open.set)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self._open is None:
            self._open, self._loop = asyncio.Event(), asyncio.get_running_loop()
        if self._is_open.is_set():
            self._open.set()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.order.append(body.decode())
        try:
            await self._open.wait()
        finally:
            with self._lock:
                self.active -= 1
        payload = json.dumps({"server": self.server_id, "body": body.decode()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@dataclass
class Gates:
    gates: list[Gate]
    servers: list[ServerThread]

    def route(self, i: int) -> ReplicaRoute:
        return ReplicaRoute(self.gates[i].server_id, "127.0.0.1", self.servers[i].port, 1)

    def open(self) -> None:
        for g in self.gates:
            g.open()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = Servers("http1")
    yield s
    s.close()


@pytest.fixture
def gw(servers: Servers) -> RunningGateway:
    return servers.gateway()


@pytest.fixture
def gates() -> Iterator[Gates]:
    made = Gates([], [])

    def start(n: int) -> None:
        for i in range(n):
            gate = Gate(f"g{i}")
            made.gates.append(gate)
            made.servers.append(ServerThread(gate).start())

    start(2)
    yield made
    made.open()
    stop_all(made.servers)


def ep(
    *replicas: ReplicaRoute,
    status: EndpointStatus = EndpointStatus.RUNNING,
    limit: int = 8,
    queued: int = 1000,
    wait_s: float = 30.0,
) -> EndpointRoute:
    return EndpointRoute(
        "e",
        status,
        tuple(replicas),
        timeout_s=30.0,
        max_concurrency=limit,
        max_queued_requests=queued,
        wait_timeout_s=wait_s,
    )


def load(gw: RunningGateway) -> EndpointLoad:
    return gw.gateway.load_snapshot().get("e", EndpointLoad())


@pytest.fixture
def pool() -> Iterator[Callable[..., Future[httpx.Response]]]:
    executor = ThreadPoolExecutor(max_workers=16)

    def post(url: str, body: str = "x", **headers: str) -> Future[httpx.Response]:
        def one() -> httpx.Response:
            with httpx.Client(timeout=30) as client:
                return client.post(url + "/endpoints/e/", content=body, headers=headers)

        return executor.submit(one)

    yield post
    executor.shutdown(wait=True, cancel_futures=True)


def test_held_request_is_released_when_a_replica_is_published(
    gw: RunningGateway, gates: Gates, pool: Callable[..., Future[httpx.Response]]
) -> None:
    gw.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
    held = pool(gw.url, "cold")
    assert wait_until(lambda: load(gw).held == 1)
    assert load(gw).in_flight == 0  # held requests are not counted twice
    assert gw.woken == ["e"]
    assert not held.done()
    gates.open()
    gw.publish(ep(gates.route(0), status=EndpointStatus.RUNNING))
    r = held.result(timeout=30)
    assert r.status_code == 200
    assert r.json() == {"server": "g0", "body": "cold"}
    assert load(gw).held == 0
    assert gw.gateway.activator.queues == {}


def test_held_requests_go_first_in_arrival_order(
    gw: RunningGateway, gates: Gates, pool: Callable[..., Future[httpx.Response]]
) -> None:
    gw.publish(ep(gates.route(0), limit=1))
    first = pool(gw.url, "first")
    assert wait_until(lambda: gates.gates[0].active == 1)
    waiting = []
    for i in range(5):
        waiting.append(pool(gw.url, f"w{i}"))
        assert wait_until(lambda i=i: load(gw).held == i + 1)  # type: ignore[misc]
    gates.open()
    assert first.result(timeout=30).status_code == 200
    assert [f.result(timeout=30).status_code for f in waiting] == [200] * 5
    assert gates.gates[0].order == ["first", "w0", "w1", "w2", "w3", "w4"]
    assert gates.gates[0].peak == 1


def test_a_burst_never_exceeds_max_concurrency_per_replica(
    gw: RunningGateway, gates: Gates, pool: Callable[..., Future[httpx.Response]]
) -> None:
    gw.publish(ep(gates.route(0), gates.route(1), limit=2))
    burst = [pool(gw.url, f"b{i}") for i in range(12)]
    # 2 replicas x 2 slots are taken; the other 8 wait in the gateway.
    assert wait_until(lambda: load(gw).held == 8)
    assert [g.active for g in gates.gates] == [2, 2]
    assert load(gw).in_flight == 4
    gates.open()
    assert [f.result(timeout=30).status_code for f in burst] == [200] * 12
    assert [g.peak for g in gates.gates] == [2, 2]
    assert sum(len(g.order) for g in gates.gates) == 12


def test_more_than_max_queued_requests_is_503(
    gw: RunningGateway, gates: Gates, pool: Callable[..., Future[httpx.Response]]
) -> None:
    gw.publish(ep(status=EndpointStatus.INITIALIZING, queued=2))
    held = [pool(gw.url, "a"), pool(gw.url, "b")]
    assert wait_until(lambda: load(gw).held == 2)
    with gw.client() as client:
        r = client.post("/endpoints/e/", content="c")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    problem = r.json()
    assert "max_queued_requests: 2" in problem["detail"]
    assert problem["limit"] == 2
    gates.open()
    gw.publish(ep(gates.route(0)))
    assert [f.result(timeout=30).status_code for f in held] == [200, 200]


def test_wait_timeout_from_the_header_and_from_the_spec(gw: RunningGateway) -> None:
    gw.publish(ep(status=EndpointStatus.SCALED_TO_ZERO, wait_s=0.05))
    with gw.client() as client:
        by_header = client.post("/endpoints/e/", content="x", headers={WAIT: "0.2"})
        by_spec = client.post("/endpoints/e/", content="x")
        bad = client.post("/endpoints/e/", content="x", headers={WAIT: "soon", "x-request-id": "b"})
        negative = client.post("/endpoints/e/", content="x", headers={WAIT: "-1"})
    assert by_header.status_code == 504
    assert "waited 0.2 s" in by_header.json()["detail"]
    assert "no replica became ready (status: scaled_to_zero)" in by_header.json()["detail"]
    assert by_header.json()["waited_s"] == 0.2
    assert by_spec.status_code == 504
    assert "waited 0.05 s" in by_spec.json()["detail"]
    for r in (bad, negative):
        assert r.status_code == 400
        assert r.json()["header"] == "X-Podium-Wait-Timeout"
        assert "X-Podium-Wait-Timeout" in r.json()["detail"]
        assert (r.json()["title"], r.json()["endpoint"]) == ("Invalid header", "e")
    assert bad.headers["x-request-id"] == "b"
    assert load(gw).held == 0
    assert gw.gateway.activator.queues == {}


def test_a_busy_replica_times_out_with_what_it_waited_for(
    gw: RunningGateway, gates: Gates, pool: Callable[..., Future[httpx.Response]]
) -> None:
    gw.publish(ep(gates.route(0), limit=1))
    first = pool(gw.url, "first")
    assert wait_until(lambda: gates.gates[0].active == 1)
    with gw.client() as client:
        r = client.post("/endpoints/e/", content="x", headers={WAIT: "0.1"})
    assert r.status_code == 504
    assert "every ready replica stayed busy (max_concurrency: 1)" in r.json()["detail"]
    gates.open()
    assert first.result(timeout=30).status_code == 200
    assert gates.gates[0].order == ["first"]


def test_paused_while_held_is_503_and_deleted_is_404(
    gw: RunningGateway, pool: Callable[..., Future[httpx.Response]]
) -> None:
    gw.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
    held = pool(gw.url)
    assert wait_until(lambda: load(gw).held == 1)
    woken = len(gw.woken)
    gw.publish(ep(status=EndpointStatus.PAUSED))
    r = held.result(timeout=30)
    assert r.status_code == 503
    assert r.json()["endpoint_status"] == "paused"
    with gw.client() as client:  # paused: 503 at once, not held, not woken
        assert client.post("/endpoints/e/", content="x").status_code == 503
    assert len(gw.woken) == woken

    gw.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
    held = pool(gw.url)
    assert wait_until(lambda: load(gw).held == 1)
    gw.holder.publish({})
    r = held.result(timeout=30)
    assert r.status_code == 404
    assert "deleted" in r.json()["detail"]


def test_a_client_that_leaves_while_held_leaves_the_queue(
    gw: RunningGateway, gates: Gates, pool: Callable[..., Future[httpx.Response]]
) -> None:
    gw.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
    with socket.create_connection(("127.0.0.1", gw.server.port)) as sock:
        sock.sendall(b"POST /endpoints/e/ HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\ngone")
        assert wait_until(lambda: load(gw).held == 1)
    assert wait_until(lambda: load(gw).held == 0)
    assert gw.gateway.activator.queues == {}
    gates.open()
    gw.publish(ep(gates.route(0)))
    assert pool(gw.url, "stays").result(timeout=30).status_code == 200
    assert gates.gates[0].order == ["stays"]  # the one that left never reached a replica
